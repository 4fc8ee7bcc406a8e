"""The deployment formats' table: every format has a writer and a predictor, and paths name formats."""

from pathlib import Path

import pytest

from keras_efficientnets.deploy import predictors
from keras_efficientnets.deploy.formats import (
    EXPORT_FORMATS,
    FORMATS_OF_QUANTIZATION,
    PATH_KINDS,
    format_of_path,
    takes_calibration,
)


def test_every_format_has_a_writer_and_a_predictor():
    from keras_efficientnets.deploy.exporter import WRITERS

    names = [f.name for f in EXPORT_FORMATS]
    assert sorted(WRITERS) == sorted(predictors.PREDICTORS) == sorted(names)


@pytest.mark.parametrize(
    ("path", "format", "expected"),
    [
        ("lite0.tflite", None, "litert"),
        ("B0.ONNX", None, "onnx"),
        ("model.xml", None, "openvino"),
        ("served", None, "saved_model"),
        ("served", "saved_model", "saved_model"),
        ("model.onnx", "onnx", "onnx"),
    ],
)
def test_a_path_names_its_format(path, format, expected):
    assert format_of_path(Path(path), format).name == expected


@pytest.mark.parametrize(
    ("path", "format", "message"),
    [
        ("model.pt", None, r"`path` must end in .tflite, .onnx or .xml, or have no ending .*model.pt"),
        ("model.tflite", "onnx", r"format='onnx' writes a .onnx file: name `path` so"),
        ("model.tflite", "tflite", r"`format` must be one of 'litert', 'onnx', 'openvino', 'saved_model'"),
    ],
)
def test_a_path_of_no_format_is_refused(path, format, message):
    with pytest.raises(ValueError, match=message):
        format_of_path(Path(path), format)


def test_int8_alone_calibrates_and_the_saved_model_is_float32_only():
    assert [takes_calibration(q) for q in (None, "float16", "int8")] == [False, False, True]
    assert FORMATS_OF_QUANTIZATION["int8"] == ("litert", "onnx", "openvino")
    assert PATH_KINDS == "a .tflite, .onnx or .xml file, or a SavedModel folder"
