"""Deployment: exporting models to runtime files and running those files.

- `formats`: the formats and quantizations as data, one table for everything below (Keras-free);
- `exporter`: `export` to LiteRT, ONNX, OpenVINO and SavedModel, float32, float16 or int8;
- `inference`: inference-only rewrites (BatchNorm folding) and `export_onnx`;
- `calibration`: int8 calibration images from a folder, an array or batches;
- `predictors`: one predictor per runtime, `load_predictor` for every file (Keras-free).

The exporters need Keras; they load on first use, so the predictors run without it.
"""

import importlib

from keras_efficientnets.deploy.formats import FLOAT_GROUPS, FORMATS, FORMATS_OF_QUANTIZATION, QUANTIZATIONS

__all__ = ["FLOAT_GROUPS", "FORMATS", "FORMATS_OF_QUANTIZATION", "QUANTIZATIONS", "export"]


def __getattr__(name):
    if name == "export":
        return importlib.import_module("keras_efficientnets.deploy.exporter").export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
