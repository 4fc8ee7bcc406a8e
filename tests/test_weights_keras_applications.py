"""weights="imagenet" for B0-B7 from keras.applications files, by name; download faults.

No test downloads: the weight files are written here, in the exact legacy
layout of keras.applications' files, from randomly initialised
keras.applications models, and served from a loopback HTTP server.
"""

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from helpers import (
    LoopbackServer,
    md5_of,
    randomize_weights,
    serve_keras_applications_files,
    set_true_imagenet_normalization,
    write_keras_applications_h5,
)

from keras_efficientnets import EfficientNetB0, EfficientNetB1, downloads, weights
from keras_efficientnets.weights.loading import WeightsDownloadError


@pytest.fixture(scope="module")
def b0_files(tmp_path_factory):
    """A random keras.applications B0 and its top / notop files in the legacy layout."""
    folder = tmp_path_factory.mktemp("served")
    reference = keras.applications.EfficientNetB0(weights=None)
    # A fair reference: true ImageNet mean and variance in its Normalization layer (the
    # files hold the published, mis-scaled ones), set before the random weights, whose
    # BatchNorm statistics are measured on normalized images.
    set_true_imagenet_normalization(reference)
    randomize_weights(reference, seed=0, classifier_std=0.5)
    write_keras_applications_h5(reference, folder / "efficientnetb0.h5")
    write_keras_applications_h5(reference, folder / "efficientnetb0_notop.h5", include_top=False)
    return reference, folder


@pytest.fixture
def served(b0_files, tmp_path, monkeypatch):
    """B0 files on a loopback server, registered with their MD5, and an empty Keras cache."""
    reference, folder = b0_files
    server = LoopbackServer(folder)
    serve_keras_applications_files(monkeypatch, "b0", server, folder)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    yield server, reference
    server.close()


def _images(size, n=2, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def _snapshot(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def test_the_test_file_has_the_published_layout_and_keras_applications_reads_it(b0_files):
    reference, folder = b0_files
    with h5py.File(folder / "efficientnetb0.h5", "r") as f:
        assert [n.decode() for n in f.attrs["layer_names"]][:3] == [
            "input_layer",
            "rescaling",
            "normalization",
        ]
        assert "block1a_dwconv/block1a_dwconv/depthwise_kernel:0" in f
        assert "stem_bn/stem_bn/moving_variance:0" in f
        assert "predictions/predictions/bias:0" in f
    # keras.applications loads such files by layer order: it must read ours.
    other = keras.applications.EfficientNetB0(weights=None)
    other.load_weights(folder / "efficientnetb0.h5")
    np.testing.assert_array_equal(
        other.get_layer("block7a_project_bn").get_weights()[3],
        reference.get_layer("block7a_project_bn").get_weights()[3],
    )


def test_imagenet_b0_equals_keras_applications_on_the_same_weights(served):
    server, reference = served
    x = _images(224)
    model = EfficientNetB0(weights="imagenet")
    ours, theirs = model.predict(x, verbose=0), reference.predict(x, verbose=0)
    assert theirs.max() > 0.01  # the random classifier is not uniform: the test can see a mismatch
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert server.requests == ["/keras-applications/efficientnetb0.h5"]
    cached = os.path.join(os.environ["KERAS_HOME"], "models", "efficientnetb0.h5")
    assert os.path.isfile(cached)

    # Features without the top come from the notop file, and match too.
    features = EfficientNetB0(weights="imagenet", include_top=False, pooling="avg")
    reference_features = keras.Model(reference.input, reference.get_layer("avg_pool").output)
    np.testing.assert_allclose(
        features.predict(x, verbose=0), reference_features.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )
    assert server.requests[-1] == "/keras-applications/efficientnetb0_notop.h5"

    # Cached now: a second model makes no request.
    EfficientNetB0(weights="imagenet")
    assert len(server.requests) == 2


def test_weights_path_reads_the_legacy_h5(b0_files):
    reference, folder = b0_files
    x = _images(224)
    model = EfficientNetB0(weights=str(folder / "efficientnetb0.h5"))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("mode, message", [("wrong_bytes", "MD5"), ("drop", "retrieval incomplete")])
def test_a_bad_download_leaves_no_file_and_the_next_run_succeeds(served, mode, message):
    server, _ = served
    server.mode = mode
    cached = os.path.join(os.environ["KERAS_HOME"], "models", "efficientnetb0.h5")
    with pytest.raises(WeightsDownloadError, match=message) as info:
        EfficientNetB0(weights="imagenet")
    assert server.url + "efficientnetb0.h5" in str(info.value)
    assert not os.path.exists(cached)
    server.mode = "good"
    EfficientNetB0(weights="imagenet")
    assert md5_of(cached) == weights.KERAS_APPLICATIONS_WEIGHTS["b0"].md5


def test_a_stalled_download_times_out_and_leaves_no_file(served, monkeypatch):
    server, _ = served
    server.mode = "stall"
    monkeypatch.setattr(downloads, "DOWNLOAD_TIMEOUT_SECONDS", 1.0)
    start = time.perf_counter()
    with pytest.raises(WeightsDownloadError, match="no data for 1 seconds: the server stalled"):
        EfficientNetB0(weights="imagenet")
    assert time.perf_counter() - start < 30
    models = os.path.join(os.environ["KERAS_HOME"], "models")
    assert os.listdir(models) == []  # neither the file nor a temporary one


def test_two_processes_filling_an_empty_cache_both_succeed(served):
    server, _ = served
    server.mode = "slow"
    fname = "efficientnetb0.h5"
    md5 = weights.KERAS_APPLICATIONS_WEIGHTS["b0"].md5
    code = (
        "import sys; from keras_efficientnets.weights.downloads import fetch; "
        f"print(fetch({fname!r}, {server.url + fname!r}, {md5!r}))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=240) for process in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err[-2000:]
    target = os.path.join(os.environ["KERAS_HOME"], "models", fname)
    assert {out.strip().splitlines()[-1] for out, _ in results} == {target}
    assert md5_of(target) == md5
    assert len(server.requests) == 2  # both really downloaded, at the same time
    assert os.listdir(os.path.dirname(target)) == [fname]


def test_keras_home_that_is_a_file_is_named(tmp_path, monkeypatch):
    home = tmp_path / "not_a_folder"
    home.write_text("")
    monkeypatch.setenv("KERAS_HOME", str(home))
    with pytest.raises(WeightsDownloadError, match="KERAS_HOME=.*not_a_folder.* is not a folder"):
        downloads.fetch("x.h5", "http://127.0.0.1:9/x.h5", "0" * 32)


def test_a_non_numeric_weight_loads_nothing_and_names_the_file_and_layer(b0_files):
    _, folder = b0_files
    model = EfficientNetB0(weights=None)
    before = _snapshot(model)
    table = weights.read_weights_file(folder / "efficientnetb0.h5")
    table["top_conv"]["kernel"] = np.full(table["top_conv"]["kernel"].shape, "x")
    with pytest.raises(ValueError) as info:
        weights.assign_weights(model, table, source="'weird.h5'", ignore_layers=("normalization",))
    message = str(info.value)
    assert "'weird.h5'" in message and "top_conv/kernel (<U1)" in message and "not numbers" in message
    for old, new in zip(before, _snapshot(model), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_truncated_file_in_the_cache_is_fetched_again(served):
    server, _ = served
    cached = os.path.join(os.environ["KERAS_HOME"], "models", "efficientnetb0.h5")
    os.makedirs(os.path.dirname(cached))
    data = (server.folder / "efficientnetb0.h5").read_bytes()
    with open(cached, "wb") as f:
        f.write(data[: len(data) // 3])
    EfficientNetB0(weights="imagenet")
    assert len(server.requests) == 1
    assert md5_of(cached) == weights.KERAS_APPLICATIONS_WEIGHTS["b0"].md5


def test_no_network_names_the_url_the_cache_path_and_weights_none(served, monkeypatch):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/keras-applications/"
    files = weights.KERAS_APPLICATIONS_WEIGHTS["b0"]
    monkeypatch.setitem(weights.KERAS_APPLICATIONS_WEIGHTS, "b0", dataclasses.replace(files, base_url=url))
    with pytest.raises(WeightsDownloadError) as info:
        EfficientNetB0(weights="imagenet", include_top=False)
    message = str(info.value)
    assert url + "efficientnetb0_notop.h5" in message
    assert os.path.join(os.environ["KERAS_HOME"], "models", "efficientnetb0_notop.h5") in message
    assert "weights=None" in message


def test_weights_path_reads_a_keras_file_by_name(tmp_path):
    from keras_efficientnets import EfficientNetLite0

    model = EfficientNetLite0(weights=None, include_top=False, input_shape=(64, 64, 3))
    randomize_weights(model, seed=5)
    model.save(tmp_path / "lite0.keras")
    loaded = EfficientNetLite0(
        weights=str(tmp_path / "lite0.keras"), include_top=False, input_shape=(64, 64, 3)
    )
    x = _images(64)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_corrupt_weights_path_is_a_clear_error(tmp_path, b0_files):
    _, folder = b0_files
    data = (folder / "efficientnetb0.h5").read_bytes()
    path = tmp_path / "broken.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt"):
        EfficientNetB0(weights=str(path))


def test_loading_is_all_or_nothing_and_lists_the_problems(b0_files):
    _, folder = b0_files
    model = EfficientNetB0(weights=None)
    before = _snapshot(model)
    table = weights.read_weights_file(folder / "efficientnetb0.h5")
    del table["block3b_se_reduce"]  # 2 missing
    table["extra_layer"] = {"kernel": np.zeros(3)}  # 1 unexpected
    table["top_conv"]["kernel"] = np.zeros((1, 1, 320, 8))  # 1 mismatched
    with pytest.raises(ValueError) as info:
        weights.assign_weights(model, table, ignore_layers=("normalization",))
    message = str(info.value)
    assert "nothing was loaded" in message
    assert "2 model weights have no value" in message and "block3b_se_reduce/kernel" in message
    assert "1 weights of the file match no model weight: extra_layer/kernel" in message
    assert "top_conv/kernel (model (1, 1, 320, 1280), file (1, 1, 320, 8))" in message
    for old, new in zip(before, _snapshot(model), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_long_list_of_missing_weights_is_cut_short(b0_files):
    model = EfficientNetB0(weights=None)
    with pytest.raises(ValueError, match=r"311 model weights have no value.*\(306 more\)"):
        weights.assign_weights(model, {})


def test_a_b0_file_does_not_load_into_b1(b0_files):
    _, folder = b0_files
    message = r"128 model weights have no value in the file: block1b_dwconv/kernel"
    with pytest.raises(ValueError, match=message):
        EfficientNetB1(weights=str(folder / "efficientnetb0.h5"), input_shape=(64, 64, 3))


def test_other_class_counts_need_include_top_false_or_skip_mismatch(served):
    with pytest.raises(ValueError, match="include_top=False"):
        EfficientNetB0(weights="imagenet", classes=10)
    server, reference = served
    model = EfficientNetB0(weights=None, classes=10)
    classifier = model.get_layer("predictions").get_weights()
    with pytest.warns(UserWarning, match="predictions"):
        weights.load_weights_into(model, "imagenet", "b0", include_top=True, skip_mismatch=True)
    # Everything but the classifier comes from the file.
    np.testing.assert_array_equal(
        model.get_layer("top_bn").get_weights()[2], reference.get_layer("top_bn").get_weights()[2]
    )
    for old, new in zip(classifier, model.get_layer("predictions").get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_variants_without_imagenet_weights_say_so():
    for variant in ("b8", "l2", "lite3", "lite4"):
        with pytest.raises(ValueError, match="No ImageNet weights ship.*convert"):
            weights.validate_weights_argument("imagenet", variant, True, 1000)
    assert weights.imagenet_source("b7").kind == "keras_applications"


@pytest.mark.slow
def test_imagenet_b1_equals_keras_applications(tmp_path, monkeypatch):
    reference = set_true_imagenet_normalization(keras.applications.EfficientNetB1(weights=None))
    randomize_weights(reference, seed=3, classifier_std=0.5)
    write_keras_applications_h5(reference, tmp_path / "efficientnetb1.h5")
    server = LoopbackServer(tmp_path)
    try:
        serve_keras_applications_files(monkeypatch, "b1", server, tmp_path)
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
        x = _images(240)
        np.testing.assert_allclose(
            EfficientNetB1(weights="imagenet").predict(x, verbose=0),
            reference.predict(x, verbose=0),
            rtol=1e-4,
            atol=1e-6,
        )
    finally:
        server.close()


def test_sidecars_are_written_in_the_format_weights_readme_documents():
    # A file format outlives the code that writes it: the name is pinned by the documentation.
    from keras_efficientnets.weights.loading import SIDECAR_FORMAT

    readme = (Path(__file__).parents[1] / "weights" / "README.md").read_text()
    assert f'| `format` | `"{SIDECAR_FORMAT}"`' in readme
