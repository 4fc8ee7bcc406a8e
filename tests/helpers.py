"""Helpers shared by the tests: random weights, images, inference, and weight files as others write them."""

import dataclasses
import hashlib
import http.server
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time

import keras
import numpy as np
from reference import IMAGENET_MEAN, IMAGENET_STD

# The projection BatchNorm of a block that is not its stage's first: it has a residual add.
_RESIDUAL_PROJECTION = re.compile(r"block\d+[b-z][a-z]*_project_bn")
# Layers that keras.applications' files leave out without the classifier.
_CLASSIFIER_LAYERS = ("avg_pool", "top_dropout", "predictions")


def randomize_weights(model, seed=0, *, classifier_std=None):
    """Gives every weight a random, non-trivial value, like a trained network's; returns `model`.

    Kernels are scaled at random around their initial values; BatchNorm gets
    random gamma and beta and moving statistics measured on random images, as
    training leaves them. Fresh BatchNorm layers are the identity (mean 0,
    variance 1), which would hide a mismatch in how statistics are copied or
    applied; random statistics that do not match the activations let the
    image's signal fade over the blocks, so the outputs would hardly depend on
    the input and a wrong early layer would not show.

    Args:
        model: Any Keras model (ours or keras.applications').
        seed: Seed of the values.
        classifier_std: If given, the classifier (``predictions``) gets weights
            of this standard deviation, so that its softmax is far from uniform
            and a wrong weight shows in the probabilities.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            continue  # input constants (keras.applications'), not learned weights
        values = []
        for weight in layer.weights:
            shape, name = tuple(weight.shape), weight.path.rsplit("/", 1)[-1]
            if classifier_std is not None and layer.name == "predictions":
                values.append(rng.normal(0.0, classifier_std, shape))
            elif name == "gamma" and _RESIDUAL_PROJECTION.fullmatch(layer.name):
                # Small residual branches, as in trained EfficientNets: with gamma
                # near 1 the residual stream of B6/B7 grows over 50 blocks until
                # float32 round-off alone exceeds any useful tolerance.
                values.append(rng.uniform(0.1, 0.3, shape))
            elif name == "gamma":
                values.append(rng.uniform(0.5, 1.5, shape))
            elif name in ("beta", "bias"):
                values.append(rng.normal(0.0, 0.1, shape))
            else:
                values.append(keras.ops.convert_to_numpy(weight) * rng.uniform(0.8, 1.2, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])
    _calibrate_batch_norm(model, seed)
    return model


def _calibrate_batch_norm(model, seed):
    """Sets every BatchNorm's moving statistics to those of a batch of random images.

    One training-mode pass with momentum 0 does it for all layers at once: each
    layer then normalizes in inference what it normalized in that pass.
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return
    images = batch_norm_calibration_images(model, seed=seed)
    # Dropout and drop connect off: the statistics are those of the inference-mode network.
    dropouts = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.Dropout)]
    saved = [(layer, layer.momentum) for layer in layers] + [(layer, layer.rate) for layer in dropouts]
    for layer in layers:
        layer.momentum = 0.0
    for layer in dropouts:
        layer.rate = 0.0
    try:
        _training_pass(model, images)
    finally:
        for layer, value in saved:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = value
            else:
                layer.momentum = value


# Images of at least this many values (four of B5's 456 px) take TensorFlow's traced path in
# _training_pass; below it tracing costs more than it saves (B0: 2.4 s against 0.8 s eagerly).
_TRACE_ABOVE_VALUES = 4 * 456 * 456 * 3


def _training_pass(model, images):
    if keras.backend.backend() == "tensorflow" and images.size >= _TRACE_ABOVE_VALUES:
        import tensorflow as tf

        # Called eagerly, a functional model holds every layer's output until it returns (B7 at
        # 600 px: the test process peaked at 17 GB, 9 GB traced); traced, TensorFlow frees each
        # once its last reader has run.
        def calibrate(x):
            return model(x, training=True)

        tf.function(calibrate, autograph=False)(images)
    else:
        model(images, training=True)


def batch_norm_calibration_images(model, count=4, seed=0):
    """The first `count` of the images that `randomize_weights(model, seed)` calibrates BatchNorm on.

    Compare two implementations of a random network on these: there every
    BatchNorm normalizes what it measured, so activations stay near 1 to the
    last block. On other images they can grow block after block, and float32
    round-off with them: a random CondConv B0 reached 6000 by block 7 in 3 of
    12 draws, where its torch and TensorFlow logits differed by 2e-4 of their
    scale; on these images, in 8 draws of each of five families, by at most
    0.15 of test_backends' tolerance.
    """
    shape = tuple(64 if dim is None else dim for dim in model.input_shape[1:])
    return np.random.default_rng(seed).uniform(0, 255, (4, *shape)).astype("float32")[:count]


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def copy_weights_by_name(source, target, skip=()):
    """Copies each named layer's weights from `source` into `target`; returns the names copied."""
    copied = []
    for layer in target.layers:
        if not layer.weights or layer.name in skip:
            continue
        layer.set_weights(source.get_layer(layer.name).get_weights())
        copied.append(layer.name)
    return copied


def random_images(batch, size, seed=0, channels=3):
    """RGB images in [0, 255], float32, channels last."""
    rng = np.random.default_rng(seed)
    height, width = (size, size) if isinstance(size, int) else size
    return rng.uniform(0, 255, (batch, height, width, channels)).astype("float32")


def assert_depends_on_the_input(outputs, at_least=0.1):
    """The outputs of a batch of different images differ: a comparison of them can see a wrong layer.

    Outputs that hardly depend on the input (a network whose signal has faded)
    would agree whatever its early layers held. Asserts that some output moves
    across the batch by at least `at_least` of the outputs' largest magnitude.
    """
    flat = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    spread, scale = float(np.max(np.ptp(flat, axis=0))), float(np.max(np.abs(flat)))
    assert scale > 0 and spread >= at_least * scale, (
        f"outputs hardly depend on the input ({spread=:.3g}, {scale=:.3g})"
    )


def channels_first_unsupported_reason():
    """Why this backend cannot run channels_first convolutions here, or None when it can.

    TensorFlow has NCHW convolutions on the CPU only through oneDNN, which it turns
    on by default on some Intel CPUs only (and never with TF_ENABLE_ONEDNN_OPTS=0);
    JAX and PyTorch always have them. Probed with a tiny convolution.
    """
    layer = keras.layers.Conv2D(1, 1, data_format="channels_first")
    try:
        layer(np.zeros((1, 1, 2, 2), "float32"))
    except Exception as error:  # the backend's own error type: tf.errors.UnimplementedError on TensorFlow
        return (
            f"the {keras.backend.backend()} backend cannot run NCHW convolutions on this CPU "
            f"({type(error).__name__}; TensorFlow needs oneDNN for them, off here: TF_ENABLE_ONEDNN_OPTS="
            f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')})"
        )
    return None


def infer(model, x):
    """Inference-mode outputs as NumPy (a dict of them for a feature extractor); an eager call,
    which costs less than `predict`'s tracing here."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


# Float32 outputs of one network computed twice, in another process or by another code path
# (another kernel set, oneDNN's or not; another backend), differ by round-off that grows with their
# scale: this fraction of their largest magnitude. Bit-equality is for the same computation in the
# same process only.
FLOAT32_ROUND_OFF = 2e-5


def assert_same_network_outputs(actual, expected, floor=0.0, err_msg=""):
    """`actual` equals `expected` (arrays, or dicts of them) up to float32 round-off (`FLOAT32_ROUND_OFF`
    of the largest magnitude of each, but no less than `floor`)."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected)
        for name in expected:
            assert_same_network_outputs(actual[name], expected[name], floor, err_msg=name)
        return
    tolerance = max(floor, FLOAT32_ROUND_OFF * float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, atol=tolerance, rtol=0, err_msg=err_msg)


def outputs_after_reload_in_fresh_process(model, tmp_path, x):
    """`model`'s outputs on `x` after a `.keras` round trip in a Python that never imports this package."""
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras
        model = keras.saving.load_model({str(path)!r})
        x = np.load({str(tmp_path / "x.npy")!r})
        y = keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))
        np.savez({str(tmp_path / "y.npz")!r}, **(y if isinstance(y, dict) else {{"output": y}}))
        assert not any(m.startswith("keras_efficientnets") for m in sys.modules), "package was imported"
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, capture_output=True)
    with np.load(tmp_path / "y.npz") as saved:
        outputs = {name: saved[name] for name in saved.files}
    return outputs["output"] if list(outputs) == ["output"] else outputs


def set_true_imagenet_normalization(model):
    """Puts the true ImageNet mean and variance in a keras.applications model's Normalization layer.

    The published files hold the std in its variance slot (tensorflow/tensorflow#49930);
    with the true values the model is a fair reference for ours.
    """
    layer = model.get_layer("normalization")
    mean, std = (np.asarray(c) / 255 for c in (IMAGENET_MEAN, IMAGENET_STD))
    layer.set_weights([mean, std**2, np.array(0)])
    layer.finalize_state()  # Keras 3 computes with copies made here, not with the variables
    return model


def write_keras_applications_h5(model, path, include_top=True):
    """Writes `model`'s weights as tf.keras 2 did for keras.applications' efficientnet*.h5.

    Root attribute `layer_names` (every layer, in order); one group per layer
    with attribute `weight_names` such as ``stem_conv/kernel:0``; datasets at
    ``<layer>/<layer>/<weight>:0``; depthwise kernels named
    ``depthwise_kernel``; a Normalization layer holds the ImageNet std in its
    variance slot, as the published files do.
    """
    import h5py

    layers = [layer for layer in model.layers if include_top or layer.name not in _CLASSIFIER_LAYERS]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        for layer in layers:
            group = f.create_group(layer.name)
            names, values = [], []
            for variable in layer.weights:
                name = variable.name
                if isinstance(layer, keras.layers.DepthwiseConv2D) and name == "kernel":
                    name = "depthwise_kernel"
                names.append(f"{layer.name}/{name}:0")
                values.append(keras.ops.convert_to_numpy(variable))
            if layer.name == "normalization" and names:  # V1 files; V2 normalizes with constants
                values = [np.asarray(IMAGENET_MEAN) / 255, np.asarray(IMAGENET_STD) / 255, np.array(0)]
            # As Keras 2 wrote them: fixed-length byte strings (an empty float array when none).
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for name, value in zip(names, values, strict=True):
                group.create_dataset(name, data=value)


class LoopbackServer:
    """A loopback HTTP server for a folder; `mode` decides how files are sent."""

    def __init__(self, folder):
        self.folder = folder
        self.mode = "good"
        self.requests = []
        self.release = threading.Event()  # ends a "stall"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                path = os.path.join(server.folder, name)
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                with open(path, "rb") as f:
                    data = f.read()
                if server.mode == "wrong_bytes":
                    data = data[:-100] + bytes(100)
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.mode == "drop":
                    # Announce the whole file, send half of it, hang up.
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if server.mode == "stall":
                    # 1000 bytes, then silence until the test ends.
                    self.wfile.write(data[:1000])
                    self.wfile.flush()
                    server.release.wait(60)
                    return
                if server.mode == "slow":
                    # In pieces, so that two clients' downloads overlap.
                    for start in range(0, len(data), len(data) // 20 + 1):
                        self.wfile.write(data[start : start + len(data) // 20 + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/keras-applications/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def serve_keras_applications_files(monkeypatch, variant, server, folder):
    """Points `variant`'s keras.applications files at `server`, with the MD5s of the files in `folder`."""
    from keras_efficientnets import weights

    files = weights.KERAS_APPLICATIONS_WEIGHTS[variant]
    top, notop = (folder / files.file(include_top)[0] for include_top in (True, False))
    monkeypatch.setitem(
        weights.KERAS_APPLICATIONS_WEIGHTS,
        variant,
        dataclasses.replace(
            files,
            base_url=server.url,
            md5=md5_of(top),
            notop_md5=md5_of(notop) if notop.exists() else "0" * 32,
        ),
    )
