"""Deployment: exporting models to runtime files and running those files.

- `exporter`: `export` to LiteRT, ONNX, OpenVINO and SavedModel, float32, float16 or int8;
- `inference`: inference-only rewrites (BatchNorm folding) and `export_onnx`;
- `calibration`: int8 calibration images from a folder, an array or batches;
- `predictors`: one predictor per runtime, `load_predictor` for every file (Keras-free).

The exporters need Keras; they load on first use, so the predictors run without it.
"""

import importlib

__all__ = ["FLOAT_GROUPS", "FORMATS", "FORMATS_OF_QUANTIZATION", "QUANTIZATIONS", "export"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("keras_efficientnets.deploy.exporter"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
