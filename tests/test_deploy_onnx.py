"""export_onnx + OnnxPredictor: ONNX Runtime computes what the Keras model computes."""

import os
import subprocess
import sys

import pytest
from helpers import (
    assert_depends_on_the_input,
    assert_same_network_outputs,
    infer,
    random_images,
    randomize_weights,
)

import keras_efficientnets as ke
from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.mark.parametrize(
    "build",
    [
        # Slow, as every variant's export is (test_every_variant_exports_to_onnx): Lite0 keeps
        # the default suite's check of ONNX Runtime against Keras. B0 with its classifier is
        # test_deploy_export.py's (every converted format).
        pytest.param(
            lambda: ke.EfficientNetB0(weights=None, include_top=False, input_shape=(96, 96, 3)),
            marks=pytest.mark.slow,
        ),
        lambda: ke.EfficientNetLite0(weights=None, input_shape=(96, 96, 3), classifier_activation=None),
        pytest.param(
            lambda: ke.EfficientNetLite0(
                weights=None, include_top=False, pooling="avg", input_shape=(96, 96, 3)
            ),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["b0-notop", "lite0", "lite0-notop-avg"],
)
def test_onnx_runtime_matches_keras(build, tmp_path):
    model = randomize_weights(build())
    path = export_onnx(model, tmp_path / "model.onnx")
    predictor = OnnxPredictor(path)
    x = random_images(3, 96, seed=7)
    expected = infer(model, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(predictor(x), expected, floor=1e-4)
    # The batch axis stays dynamic: a different batch size runs through the same file.
    assert_same_network_outputs(predictor.predict(x, batch_size=2), expected, floor=1e-4)


def test_a_backbone_exports_every_level(tmp_path):
    backbone = randomize_weights(
        ke.EfficientNetLite0(weights=None, features_only=True, out_indices=(1, 2, 4), p5="head")
    )
    predictor = OnnxPredictor(export_onnx(backbone, tmp_path / "backbone.onnx"))
    assert predictor.output_names == ["P2", "P3", "P5"]
    x = random_images(3, (96, 80), seed=7)  # the spatial sizes stay dynamic too
    expected = infer(backbone, x)
    for outputs in (predictor(x), predictor.predict(x, batch_size=2)):
        assert sorted(outputs) == ["P2", "P3", "P5"]
        for level, maps in expected.items():
            assert_same_network_outputs(outputs[level], maps, floor=1e-4, err_msg=level)
    assert outputs["P5"].shape == (3, 3, 3, 1280)
    with pytest.raises(ValueError, match=r"non-empty batch.*images.shape=\(0, 96, 80, 3\)"):
        predictor.predict(x[:0])


def test_export_onnx_rejects_bad_arguments(tmp_path):
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(TypeError, match="Received: model="):
        export_onnx("model.keras", tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="Received: path=3"):
        export_onnx(model, 3)
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxPredictor(tmp_path / "missing.onnx")


# Each export runs in its own process: tf2onnx holds several copies of a large graph, and in
# one long-lived test process B7 and B8 exports need more than 24 GiB together.
# float32 round-off grows with depth, the more with random weights: the export is held to the
# float64 model, as close as Keras's own float32 model is (within 4x, and 1e-5 of the scale).
_EXPORT_AND_COMPARE = """
import sys, numpy as np, keras_efficientnets as ke
from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx
sys.path.insert(0, {tests!r})
from helpers import infer, random_images, randomize_weights
options = dict(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
model = randomize_weights(getattr(ke, {name!r})(**options))
exact = getattr(ke, {name!r})(dtype="float64", **options)
exact.set_weights(model.get_weights())
x = random_images(1, 64, seed=2)
truth = infer(exact, x.astype("float64"))
onnx = OnnxPredictor(export_onnx(model, {path!r}))(x)
print(np.abs(onnx - truth).max(), np.abs(infer(model, x) - truth).max(), np.abs(truth).max())
"""

# B0, Lite0 and one model of each other family export in the default suite (here and in
# test_models_families.py, test_deploy_export.py); here the deepest and widest of each family, whose
# blocks are the same kinds: B8 (B7's blocks, wider and deeper), Lite4, V2-S and EdgeTPU-L. Not
# CondConv B1-8e: its routing and expert kernels are B0-4e's ops with 8 experts in place of 4
# (test_models_families.py exports B0-4e; 98 s of CI here). Not L2 or V2-XL: tf2onnx needs more
# than 24 GiB of memory for their 481M and 208M parameters.
ONNX_VARIANTS = [ke.config.VARIANTS[k].constructor_name for k in ("b8", "lite4", "v2s", "edgetpul")]


@pytest.mark.slow
@pytest.mark.parametrize("name", ONNX_VARIANTS)
def test_every_variant_exports_to_onnx(name, tmp_path):
    # Small images keep this quick: the graph and the weights are those of the full model.
    script = _EXPORT_AND_COMPARE.format(
        tests=os.path.dirname(__file__), name=name, path=str(tmp_path / "m.onnx")
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    onnx_error, keras_error, scale = map(float, result.stdout.split()[-3:])
    assert scale > 0.1
    assert onnx_error <= 4 * keras_error + 1e-5 * scale, (onnx_error, keras_error, scale)
