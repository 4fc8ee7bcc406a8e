"""The deployment formats, as data: one table that the exporter, the predictors, the command line
and the benchmarks read. Keras-free.

Adding a format: a row here, a writer in `exporter` and a predictor in `predictors` (a test
holds all three to this table).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_efficientnets._common.validation import check_choice

__all__ = [
    "CALIBRATED_QUANTIZATIONS",
    "EXPORT_FORMATS",
    "FLOAT_GROUPS",
    "FORMATS",
    "FORMATS_OF_QUANTIZATION",
    "PATH_KINDS",
    "QUANTIZATIONS",
    "ExportFormat",
    "takes_calibration",
    "format_of_path",
]

# None is float32.
QUANTIZATIONS = (None, "float16", "int8")
# The quantizations that calibrate on images (and so take `calibration`, and may keep layers in float).
CALIBRATED_QUANTIZATIONS = ("int8",)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    name: str
    suffix: str  # the file's ending; "" for a folder
    quantizations: tuple


EXPORT_FORMATS = (
    ExportFormat("litert", ".tflite", QUANTIZATIONS),
    ExportFormat("onnx", ".onnx", QUANTIZATIONS),
    ExportFormat("openvino", ".xml", QUANTIZATIONS),  # its weights in a .bin beside it
    ExportFormat("saved_model", "", (None,)),  # a folder
)
# Each format's file name ending ("" for a folder).
FORMATS = {f.name: f.suffix for f in EXPORT_FORMATS}
# The formats that support each quantization.
FORMATS_OF_QUANTIZATION = {
    q: tuple(f.name for f in EXPORT_FORMATS if q in f.quantizations) for q in QUANTIZATIONS
}
# Layers an int8 export can keep in float (`keep_float`), by the names of their Keras layers:
# the squeeze-excite gates and the stem and head, where swish + SE models lose the most.
FLOAT_GROUPS = {
    "se": r"block\d+[a-z]+_se_(?:squeeze|reduce|expand|excite)",
    "stem": r"stem_(?:conv|bn|activation)",
    "head": r"top_(?:conv|bn|activation)|predictions",
}
_FILE_SUFFIXES = [f.suffix for f in EXPORT_FORMATS if f.suffix]
_SUFFIX_LIST = f"{', '.join(_FILE_SUFFIXES[:-1])} or {_FILE_SUFFIXES[-1]}"  # ".tflite, .onnx or .xml"
# What an exported model's path may be, for messages.
PATH_KINDS = f"a {_SUFFIX_LIST} file, or a SavedModel folder"


def format_of_path(path: Path, format: str | None = None) -> ExportFormat:
    """The format `format` names, checked against `path`'s ending; or, with None, the one that
    ending names (no ending: a SavedModel folder)."""
    by_name = {f.name: f for f in EXPORT_FORMATS}
    if format is not None:
        chosen = by_name[check_choice("format", format, tuple(by_name))]
        if chosen.suffix and path.suffix.lower() != chosen.suffix:
            raise ValueError(
                f"format={format!r} writes a {chosen.suffix} file: name `path` so. "
                f"Received: path={str(path)!r}"
            )
        return chosen
    by_suffix = {f.suffix: f for f in EXPORT_FORMATS}
    if path.suffix.lower() not in by_suffix:
        raise ValueError(
            f"`path` must end in {_SUFFIX_LIST}, or have no ending (a SavedModel folder), or pass `format`. "
            f"Received: path={str(path)!r}"
        )
    return by_suffix[path.suffix.lower()]


def takes_calibration(quantize) -> bool:
    """Whether `quantize` calibrates on images: calibration images go with it, and only with it."""
    return quantize in CALIBRATED_QUANTIZATIONS
