"""Shared helpers for the test suite."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# REFERENCE.md: Keras count_params of every variant: (total with top, trainable with top,
# total with include_top=False); None where the reference gives no number.
REFERENCE_PARAMS = {
    "b0": (5_330_564, 5_288_548, 4_049_564),
    "b1": (7_856_232, 7_794_184, 6_575_232),
    "b2": (9_177_562, 9_109_994, 7_768_562),
    "b3": (12_320_528, 12_233_232, 10_783_528),
    "b4": (19_466_816, 19_341_616, 17_673_816),
    "b5": (30_562_520, 30_389_784, 28_513_520),
    "b6": (43_265_136, 43_040_704, 40_960_136),
    "b7": (66_658_680, 66_347_960, 64_097_680),
    "b8": (87_793_174, 87_413_142, None),
    "l2": (481_399_996, 480_309_308, None),
    "lite0": (4_694_024, 4_652_008, None),
    "lite1": (5_470_344, 5_416_680, None),
    "lite2": (6_150_168, 6_092_072, None),
    "lite3": (None, 8_197_096, None),
    "lite4": (None, 13_006_568, None),
}


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
            if name == "gamma" and layer.name.endswith("project_bn"):
                # Small residual branches, as in trained EfficientNets: with gamma
                # near 1 the residual stream of B6/B7 grows to 1e7 over 50 blocks
                # and float32 round-off alone exceeds any useful tolerance.
                values.append(rng.uniform(0.1, 0.3, shape))
            elif name in ("gamma", "moving_variance"):
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
