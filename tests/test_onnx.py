"""export_onnx + OnnxPredictor: ONNX Runtime computes what the Keras model computes."""

import numpy as np
import pytest
from conftest import infer, random_images, randomize_weights

import keras_efficientnets as ke
from keras_efficientnets.inference import OnnxPredictor, export_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.mark.parametrize(
    "build",
    [
        lambda: ke.EfficientNetB0(weights=None, input_shape=(96, 96, 3), classifier_activation=None),
        lambda: ke.EfficientNetB0(weights=None, include_top=False, input_shape=(96, 96, 3)),
        lambda: ke.EfficientNetLite0(weights=None, input_shape=(96, 96, 3), classifier_activation=None),
        lambda: ke.EfficientNetLite0(weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3)),
    ],
    ids=["b0", "b0-notop", "lite0", "lite0-notop-avg"],
)
def test_onnx_runtime_matches_keras(build, tmp_path):
    model = randomize_weights(build())
    path = export_onnx(model, tmp_path / "model.onnx")
    predictor = OnnxPredictor(path)
    x = random_images(3, 96, seed=7)
    expected = infer(model, x)
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(predictor(x), expected, atol=1e-4, rtol=0)
    # The batch axis stays dynamic: a different batch size runs through the same file.
    np.testing.assert_allclose(predictor.predict(x, batch_size=2), expected, atol=1e-4, rtol=0)


def test_export_onnx_rejects_bad_arguments(tmp_path):
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(TypeError, match="Received: model="):
        export_onnx("model.keras", tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="Received: path=3"):
        export_onnx(model, 3)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxPredictor(tmp_path / "missing.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", [v.constructor_name for k, v in ke.config.VARIANTS.items() if k != "l2"])
def test_every_variant_exports_to_onnx(name, tmp_path):
    # Small images keep this quick: the graph and the weights are those of the full model.
    model = randomize_weights(
        getattr(ke, name)(
            weights=None, input_shape=(64, 64, 3), include_preprocessing=False, classifier_activation=None
        )
    )
    x = random_images(1, 64, seed=2) / 255.0
    np.testing.assert_allclose(
        OnnxPredictor(export_onnx(model, tmp_path / "m.onnx"))(x), infer(model, x), atol=1e-4
    )
