"""`weights=` names of timm's checkpoints on the Hugging Face Hub, served from 127.0.0.1."""

import json
import shutil

import numpy as np
import pytest
from helpers import random_images
from PIL import Image
from timm_reference import LoopbackHub, import_timm, timm_outputs, write_timm_checkpoint

import keras_efficientnets as ke
from keras_efficientnets.arch.variants import VARIANTS
from keras_efficientnets.weights.downloads import WeightsDownloadError
from keras_efficientnets.weights.hub import SHORT_NAMES, TIMM_ARCHITECTURES, TIMM_TAGS, hub_names

SIZE = 65
REPO = "timm/tf_efficientnet_lite0.in1k"


@pytest.fixture(scope="module")
def lite0_checkpoint(tmp_path_factory):
    """A random timm Lite0's files, its test images and timm's outputs on them: made once."""
    folder = tmp_path_factory.mktemp("repo")
    images = random_images(2, SIZE, seed=11)
    reference, _, mean, std = write_timm_checkpoint("lite0", folder, images)
    return folder, images, timm_outputs(reference, images, mean, std)


@pytest.fixture
def hub(lite0_checkpoint, tmp_path, monkeypatch):
    """A loopback Hub serving the random Lite0 as timm's REPO, with an empty cache of the test's own."""
    folder, images, expected = lite0_checkpoint
    with LoopbackHub() as server:
        server.add_repo(REPO, folder)
        server.expected = expected
        server.images = images
        server.cache = tmp_path / "cache"
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(server.cache))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


def lite0(weights):
    return ke.EfficientNetLite0(weights=weights, input_shape=(SIZE, SIZE, 3), classifier_activation=None)


def cached_files(cache):
    return sorted(p.name for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_every_spelling_of_a_hub_checkpoint_loads_timms_weights(hub):
    for weights in ("official", REPO, f"hf://{REPO}"):
        outputs = lite0(weights).predict(hub.images, verbose=0)
        np.testing.assert_allclose(outputs, hub.expected, atol=1e-4 * np.abs(hub.expected).max(), rtol=0)
    downloads = [path for method, path in hub.requests if method == "GET"]
    assert sorted(downloads) == sorted(
        f"/{REPO}/resolve/main/{n}" for n in ("config.json", "model.safetensors")
    )


def test_offline_a_cached_checkpoint_loads_without_the_hub(hub, monkeypatch):
    online = lite0("official").predict(hub.images, verbose=0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests_before = len(hub.requests)

    offline = lite0("official").predict(hub.images, verbose=0)

    np.testing.assert_array_equal(offline, online)
    assert len(hub.requests) == requests_before


def test_offline_with_an_empty_cache_says_so_and_caches_nothing(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(
        WeightsDownloadError, match=rf"{REPO}/config.json is not in the Hugging Face cache and HF_HUB_OFFLINE"
    ):
        lite0("official")
    assert hub.requests == []
    assert not any(name.endswith(".safetensors") for name in cached_files(hub.cache))


def test_a_download_that_does_not_match_the_hubs_sha256_is_refused_and_removed(hub):
    hub.corrupt.add((REPO, "model.safetensors"))

    with pytest.raises(
        WeightsDownloadError, match=r"model.safetensors is corrupt: its sha256 is [0-9a-f]{64}, the Hub's is"
    ):
        lite0("official")
    assert "model.safetensors" not in cached_files(hub.cache)
    assert all(len(name) != 64 for name in cached_files(hub.cache) if name != "config.json")

    hub.corrupt.clear()
    outputs = lite0("official").predict(hub.images, verbose=0)
    np.testing.assert_allclose(outputs, hub.expected, atol=1e-4 * np.abs(hub.expected).max(), rtol=0)


def test_a_download_cut_off_halfway_is_our_error_and_leaves_no_weights_in_the_cache(hub):
    hub.truncated.add((REPO, "model.safetensors"))

    with pytest.raises(WeightsDownloadError, match=rf"Could not download {REPO}/model.safetensors"):
        lite0("official")
    assert not any(name.endswith(".safetensors") or len(name) == 64 for name in cached_files(hub.cache))

    hub.truncated.clear()
    outputs = lite0("official").predict(hub.images, verbose=0)
    np.testing.assert_allclose(outputs, hub.expected, atol=1e-4 * np.abs(hub.expected).max(), rtol=0)


def test_a_checkpoint_the_hub_does_not_have_is_our_error(hub):
    with pytest.raises(
        WeightsDownloadError, match=r"Could not download timm/tf_efficientnet_b8.ap_in1k/config.json"
    ):
        ke.EfficientNetB8(weights="advprop")


@pytest.mark.parametrize(
    "constructor, weights, match",
    [
        (
            "EfficientNetB8",
            "noisy-student",
            r"EfficientNetB8 has no 'noisy-student' weights on the Hub: it has 'advprop', 'randaugment'",
        ),
        (
            "EfficientNetB3",
            "timm/tf_efficientnet_b0.ns_jft_in1k",
            r"does not fit EfficientNetB3 .*holds EfficientNetB0's weights",
        ),
        (
            "EfficientNetV2S",
            "timm/efficientnetv2_rw_s.ra2_in1k",
            r"is timm's efficientnetv2_rw_s, which does not fit EfficientNetV2S .*not one of the networks",
        ),
        (
            "EfficientNetB0",
            "noisy-studnet",
            r"`weights` must be 'imagenet', autoaugment, advprop, official, noisy-student, 'timm/",
        ),
    ],
)
def test_a_name_that_does_not_fit_is_refused_before_any_download(hub, constructor, weights, match):
    with pytest.raises(ValueError, match=match):
        getattr(ke, constructor)(weights=weights)
    assert hub.requests == []


def test_the_builder_needs_a_variant_for_hub_names():
    with pytest.raises(ValueError, match=r"Hub weights need a named variant .*weights='noisy-student'"):
        ke.EfficientNet(
            input_shape=(SIZE, SIZE, 3),
            block_args_list=[ke.BlockArgs(32, 16, 3, 1, 1, 0.25, 1)],
            width_coefficient=1.0,
            depth_coefficient=1.0,
            weights="noisy-student",
        )


def test_the_weight_sets_are_those_timm_publishes():
    timm = import_timm()
    published = {name for name in timm.list_pretrained("tf_efficientnet*")}

    ours = {f"{TIMM_ARCHITECTURES[variant]}.{tag}" for variant in VARIANTS for tag in TIMM_TAGS[variant]}

    assert ours == published
    assert set(TIMM_ARCHITECTURES) == set(VARIANTS)
    assert {tag for tags in TIMM_TAGS.values() for tag in tags} == set(SHORT_NAMES.values())
    assert hub_names("v2xl") == {
        "imagenet21k": "timm/tf_efficientnetv2_xl.in21k",
        "imagenet21k-ft1k": "timm/tf_efficientnetv2_xl.in21k_ft_in1k",
    }


def test_timms_own_weights_load_by_name_with_their_padding(tmp_path, monkeypatch):
    images = random_images(2, SIZE, seed=12)
    reference, _, mean, std = write_timm_checkpoint("lite0", tmp_path / "repo", images, own=True)
    with LoopbackHub() as server:
        server.add_repo("timm/efficientnet_lite0.ra_in1k", tmp_path / "repo")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

        model = lite0("timm/efficientnet_lite0.ra_in1k")

    expected = timm_outputs(reference, images, mean, std)
    np.testing.assert_allclose(
        model.predict(images, verbose=0), expected, atol=1e-4 * np.abs(expected).max(), rtol=0
    )
    assert model.get_layer("stem_conv_pad").padding == ((1, 1), (1, 1))


def test_predict_evaluates_a_checkpoint_at_its_own_size_crop_and_resampling(
    lite0_checkpoint, hub, tmp_path, monkeypatch, capsys
):
    from keras_efficientnets import cli
    from keras_efficientnets._common import images

    folder, _, _ = lite0_checkpoint
    evaluated = tmp_path / "repo"
    evaluated.mkdir()
    shutil.copy(folder / "model.safetensors", evaluated)
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"].update(input_size=[3, 96, 96], crop_pct=0.5, interpolation="bilinear")
    (evaluated / "config.json").write_text(json.dumps(config))
    hub.add_repo(REPO, evaluated)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)).save(photo)
    loads = []
    load_image = images.load_image
    monkeypatch.setattr(
        images, "load_image", lambda path, **options: loads.append(options) or load_image(path, **options)
    )

    assert cli.main(["predict", str(photo), "--model", "lite0", "--weights", REPO, "--top", "1"]) == 0

    assert loads == [{"size": 96, "crop_fraction": 0.5, "interpolation": "bilinear"}]
    assert f"EfficientNetLite0 with {REPO} weights, 96x96 centre crop:" in capsys.readouterr().out
