"""Shared helpers for the test suite."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def randomize_weights(model, seed=0):
    """Gives every weight a random, non-trivial value, BatchNorm statistics included.

    Freshly initialised BatchNorm layers are the identity (mean 0, variance 1),
    which would hide a mismatch in how statistics are copied or applied.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.weights:
            shape, name = tuple(weight.shape), weight.path.rsplit("/", 1)[-1]
            if name in ("gamma", "moving_variance"):
                values.append(rng.uniform(0.5, 1.5, shape))
            elif name in ("beta", "moving_mean", "bias"):
                values.append(rng.normal(0.0, 0.1, shape))
            else:
                values.append(keras.ops.convert_to_numpy(weight) * rng.uniform(0.8, 1.2, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])
    return model


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


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session(free_memory=False)


def infer(model, x):
    """Inference-mode outputs as NumPy; an eager call, which costs less than `predict`'s tracing here."""
    return keras.ops.convert_to_numpy(model(x, training=False))
