"""The subset that CI runs on every backend (`pytest -m backends` with KERAS_BACKEND set).

Parity with TensorFlow: the model is run here, then its weights and inputs go
to a subprocess on the TensorFlow backend, and the two outputs must agree.
"""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import (
    assert_depends_on_the_input,
    assert_same_network_outputs,
    batch_norm_calibration_images,
    infer,
    random_images,
    randomize_weights,
)

import keras_efficientnets as ke

pytestmark = pytest.mark.backends

SIZE = 96


# One model of each family: V1, Lite, V2 (fused blocks), EdgeTPU (ReLU, forced stem), CondConv.
FAMILY_MEMBERS = [
    "EfficientNetB0",
    "EfficientNetLite0",
    "EfficientNetV2B0",
    "EfficientNetEdgeTPUS",
    "EfficientNetCondConvB0_4e",
]


@pytest.fixture(params=FAMILY_MEMBERS)
def model(request):
    return randomize_weights(getattr(ke, request.param)(weights=None, input_shape=(SIZE, SIZE, 3)))


def test_forward_gives_probabilities(model):
    probabilities = infer(model, random_images(2, SIZE))
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_keras_round_trip(model, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = random_images(2, SIZE, seed=3)
    np.testing.assert_allclose(infer(reloaded, x), infer(model, x), atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    "name, output_stride",
    [(name, None) for name in FAMILY_MEMBERS] + [("EfficientNetB0", 8)],  # dilated kernels too
)
def test_logits_equal_tensorflow_on_the_same_weights(name, output_stride, tmp_path):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("TensorFlow is the reference backend this test compares against")
    options = {
        "weights": None,
        "input_shape": (SIZE, SIZE, 3),
        "classifier_activation": None,
        "output_stride": output_stride,
    }
    keras.utils.set_random_seed(0)  # the same draw on every run: a failure reproduces
    model = randomize_weights(getattr(ke, name)(**options))
    model.save_weights(tmp_path / "model.weights.h5")
    # Images where the random network is well conditioned (see batch_norm_calibration_images).
    x = batch_norm_calibration_images(model, count=2)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import numpy as np, keras, keras_efficientnets as ke
        options = {options!r}
        model = ke.{name}(**options)
        model.load_weights("model.weights.h5")
        logits = model(np.load("x.npy"), training=False)
        np.save("tf.npy", keras.ops.convert_to_numpy(logits))
    """)
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, capture_output=True)
    expected = np.load(tmp_path / "tf.npy")
    assert_depends_on_the_input(expected)
    # Logits of about 10 here; no tighter than 1e-4 on smaller ones.
    assert_same_network_outputs(infer(model, x), expected, floor=1e-4)
