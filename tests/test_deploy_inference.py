"""fold_batch_norm: same outputs in inference mode, no BatchNorm or Dropout left, saves as .keras."""

import keras
import numpy as np
import pytest
from helpers import (
    assert_depends_on_the_input,
    assert_same_network_outputs,
    infer,
    random_images,
    randomize_weights,
)

import keras_efficientnets as ke
from keras_efficientnets import BlockArgs, EfficientNet
from keras_efficientnets.deploy.inference import fold_batch_norm

pytestmark = pytest.mark.backends


def custom_model(**kwargs):
    stages = [BlockArgs(32, 24, 5, 2, 2, 0.5, 3), BlockArgs.from_block_string("r2_k3_s11_e4_i24_o24_noskip")]
    return EfficientNet((None, None, 3), stages, 1.3, 1.2, drop_connect_rate=0.3, dropout_rate=0.2, **kwargs)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ke.EfficientNetB0(weights=None, input_shape=(96, 96, 3), classifier_activation=None),
        lambda: ke.EfficientNetLite0(weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3)),
        lambda: custom_model(classifier_activation=None),
    ],
    ids=["b0", "lite0-notop", "custom"],
)
def test_folded_model_computes_the_same_outputs(build):
    model = randomize_weights(build())
    original_weights = [w.copy() for w in model.get_weights()]
    folded = fold_batch_norm(model)
    kinds = {type(layer).__name__ for layer in folded.layers}
    assert not kinds & {"BatchNormalization", "Dropout"}
    x = random_images(2, 96, seed=4)
    expected = infer(model, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(infer(folded, x), expected, floor=1e-4)
    for before, after in zip(original_weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_folded_model_keeps_any_input_shape():
    folded = fold_batch_norm(randomize_weights(custom_model(include_top=False)))
    for size in (33, 100):
        assert folded(random_images(1, size)).shape[1:3] == (-(-size // 4), -(-size // 4))


def test_folded_model_saves_and_reloads(tmp_path):
    folded = fold_batch_norm(randomize_weights(custom_model()))
    folded.save(tmp_path / "folded.keras")
    reloaded = keras.saving.load_model(tmp_path / "folded.keras")
    x = random_images(2, 64)
    np.testing.assert_allclose(infer(reloaded, x), infer(folded, x), atol=1e-7, rtol=0)


def test_fold_rejects_non_functional_models():
    with pytest.raises(TypeError, match="functional"):
        fold_batch_norm(keras.Sequential([keras.layers.Dense(2)]))
