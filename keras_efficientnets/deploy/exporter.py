"""Export for deployment: LiteRT, ONNX, OpenVINO and SavedModel files, in float32, float16 or int8.

One entry point, `export`, drives each format's own toolchain: Keras's
exporters and the TF LiteRT converter, tf2onnx and ONNX Runtime's quantizer,
OpenVINO and NNCF. The exported graph keeps the model's input normalization,
so every file takes what the Keras model takes (RGB in [0, 255]), with a
dynamic batch axis; `predictors.load_predictor` runs any of them.

The int8 settings are the ones measured best on the real EfficientNet-Lite
weights (BENCHMARKS.md): per-channel weights everywhere (per-tensor weights
lose about 40 points of top-1 agreement on the depthwise convolutions);
ONNX Runtime's graph pre-processing first, QDQ with unsigned activations
(the fast kernels on x86) and percentile ranges; NNCF with full bias
correction.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import keras

from keras_efficientnets._common.fileio import (
    atomic_path,
    check_output_name,
    check_writable_folder,
    folder_beside,
    replace_together,
)
from keras_efficientnets._common.optional import require
from keras_efficientnets._common.validation import check_choice, received
from keras_efficientnets.deploy.calibration import DEFAULT_CALIBRATION_IMAGES, calibration_images
from keras_efficientnets.deploy.formats import (
    FLOAT_GROUPS,
    FORMATS,
    FORMATS_OF_QUANTIZATION,
    QUANTIZATIONS,
    format_of_path,
    takes_calibration,
)
from keras_efficientnets.deploy.inference import ONNX_INPUT_NAME, export_onnx

__all__ = ["FLOAT_GROUPS", "FORMATS", "FORMATS_OF_QUANTIZATION", "QUANTIZATIONS", "WRITERS", "export"]


def export(
    model: keras.Model,
    path,
    format: str | None = None,
    quantize: str | None = None,
    calibration=None,
    *,
    calibration_limit: int = DEFAULT_CALIBRATION_IMAGES,
    keep_float=(),
    verbose: bool = True,
) -> Path:
    """Writes `model` for a deployment runtime; nothing is left behind if it fails.

    Args:
        model: A single-input Keras model (any model of this package,
            backbones included), on the TensorFlow backend.
        path: The file to write: ``.tflite`` (LiteRT), ``.onnx``, ``.xml``
            (OpenVINO IR, with its ``.bin`` beside it) or a folder (SavedModel).
        format: "litert", "onnx", "openvino" or "saved_model"; None to read it
            from `path`'s ending (no ending: a SavedModel folder).
        quantize: None (float32); "float16" (weights stored in float16: half
            the size, outputs within about 1% of the logits' scale); "int8"
            (post-training quantization of weights and activations, calibrated
            on `calibration`; a quarter of the size and 2-3x faster on CPUs).
            ONNX int8 stores 7-bit weights (ONNX Runtime's ``reduce_range``), so
            that CPUs without VNNI compute what CPUs with it do, without
            saturating: the file agrees with the float model equally on both.
            The SavedModel is float32 only.
        calibration: With int8: a folder of images, an array of images, or an
            iterable of batches (e.g. a ``tf.data`` dataset), RGB in [0, 255]
            like the model's input (`calibration.calibration_images`). Use
            images like the ones the model will see, a few hundred.
        calibration_limit: At most this many calibration images are used.
        keep_float: With int8, groups of layers to leave in float: any of
            `FLOAT_GROUPS` ("se", "stem", "head"). "head" avoids the ties that
            quantized logits make among the top classes.
        verbose: Show progress (calibration images read, quantizer progress).

    Returns:
        The path written.

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights="imagenet")  # doctest: +SKIP
        >>> export(model, "lite0_int8.tflite", quantize="int8", calibration="photos/")  # doctest: +SKIP
        PosixPath('lite0_int8.tflite')
    """
    _check_model(model)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike. {received('path', path)}")
    check_output_name(path, "path")
    path = Path(path)
    format = format_of_path(path, format).name
    quantize = check_choice("quantize", quantize, QUANTIZATIONS)
    if format not in FORMATS_OF_QUANTIZATION[quantize]:
        raise ValueError(
            f"format={format!r} supports no quantization; quantize={quantize!r} exports to "
            f"{', '.join(FORMATS_OF_QUANTIZATION[quantize])}. "
            f"Received: format={format!r}, quantize={quantize!r}"
        )
    keep_float = _check_keep_float(keep_float, quantize)
    if (calibration is not None) != takes_calibration(quantize):
        raise ValueError(
            "`calibration` images go with quantize='int8', and only with it. "
            f"Received: quantize={quantize!r}, calibration={'None' if calibration is None else 'given'}"
        )
    check_writable_folder(path, "path")
    _check_replaceable(path, format)
    images = None
    if takes_calibration(quantize):
        images = calibration_images(
            calibration, model.input_shape[1:], calibration_limit, _progress("calibration images", verbose)
        )
    WRITERS[format](model, path, quantize, images, keep_float, verbose)
    return path


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', model)}")
    if len(model.inputs) != 1:
        raise ValueError(f"`export` supports models with one input; this one has {len(model.inputs)}.")
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "`export` runs TensorFlow's converters and needs the TensorFlow backend: save the model "
            "(model.save('model.keras')) and export it from a process started with KERAS_BACKEND=tensorflow. "
            f"Received: backend {keras.backend.backend()!r}"
        )


def _check_replaceable(path: Path, format: str):
    """Refuses, before any work, to replace what is not an earlier export of the same kind."""
    targets = [path, path.with_suffix(".bin")] if format == "openvino" else [path]
    if format == "saved_model":
        if path.is_dir() and any(path.iterdir()) and not (path / "saved_model.pb").is_file():
            raise FileExistsError(
                f"`path` is a folder that holds no SavedModel: export replaces only a SavedModel folder or "
                f"an empty one. Received: path={str(path)!r}"
            )
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"`path` is a file; a SavedModel is a folder. Received: path={str(path)!r}")
        return
    for target in targets:
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a folder; export writes a {target.suffix} file there.")


def _check_keep_float(keep_float, quantize) -> tuple[str, ...]:
    if isinstance(keep_float, str):
        keep_float = (keep_float,)
    try:
        groups = tuple(keep_float)
    except TypeError:
        raise TypeError(
            f"`keep_float` must be a list of {sorted(FLOAT_GROUPS)}. {received('keep_float', keep_float)}"
        ) from None
    for group in groups:
        check_choice("keep_float", group, tuple(FLOAT_GROUPS))
    if groups and not takes_calibration(quantize):
        raise ValueError(f"`keep_float` applies to quantize='int8'. Received: quantize={quantize!r}")
    return groups


def _float_pattern(keep_float) -> re.Pattern | None:
    """Matches the runtime node names that come from the kept layers (``.../block2a_se_reduce_1/...``)."""
    if not keep_float:
        return None
    layers = "|".join(FLOAT_GROUPS[group] for group in keep_float)
    return re.compile(rf"(?:^|/)(?:{layers})(?:_\d+)?(?:/|$)")


def _progress(label: str, verbose: bool):
    if not verbose:
        return None
    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            print(f"Reading {total} {label}")
            bar = keras.utils.Progbar(total)
        bar.update(done)

    return update


def _signature(model) -> list:
    return [keras.InputSpec(shape=model.input_shape, dtype=model.inputs[0].dtype, name=ONNX_INPUT_NAME)]


# ---------------------------------------------------------------------------
# LiteRT


def _litert(model, path: Path, quantize, images, keep_float, verbose):
    tf = require("tensorflow", "LiteRT export")
    options = {}
    if quantize == "float16":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_types": [tf.float16]},
        }
    elif quantize == "int8":
        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": _representative_dataset(images, verbose),
        }
        if not keep_float:  # all-integer, or fail: no silent float fallback
            options["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}
    with atomic_path(path, suffix=".tflite") as temporary:
        if keep_float:
            Path(temporary).write_bytes(_litert_with_float_layers(model, images, keep_float, verbose))
        else:
            model.export(
                temporary, format="litert", input_signature=_signature(model), verbose=False, **options
            )


def _representative_dataset(images, verbose):
    def batches():
        bar = keras.utils.Progbar(len(images)) if verbose else None
        for index, image in enumerate(images, 1):
            yield [image[None]]
            if bar:
                bar.update(index)

    return batches


def _litert_with_float_layers(model, images, keep_float, verbose) -> bytes:
    """Integer LiteRT with the kept layers' ops in float: the converter's selective quantization."""
    tf = require("tensorflow", "LiteRT export")
    interpreter_lib = require("ai_edge_litert.interpreter", "LiteRT export with keep_float")
    pattern = _float_pattern(keep_float)
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, format="tf_saved_model", input_signature=_signature(model), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(images, verbose)
        float_model = interpreter_lib.Interpreter(
            model_content=tf.lite.TFLiteConverter.from_saved_model(folder).convert()
        )
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=_representative_dataset(images[:1], False),
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=_litert_kept_outputs(float_model, pattern)
            ),
        )
        return debugger.get_nondebug_quantized_model()


def _litert_kept_outputs(float_model, pattern: re.Pattern) -> list[str]:
    """The output tensors of the float model's ops that `pattern` keeps: the debugger's denylist.

    An op is kept when its outputs' or its weights' name matches (the classifier's output is named
    "StatefulPartitionedCall"; its weights keep the layer's name).
    """
    tensors = [detail["name"] for detail in float_model.get_tensor_details()]
    kept = set()
    for op in float_model._get_ops_details():
        labels = [tensors[index] for index in (*op["outputs"], *op["inputs"][1:2]) if index >= 0]
        if any(pattern.search(label) for label in labels):
            kept.update(tensors[index] for index in op["outputs"])
    return sorted(kept)


# ---------------------------------------------------------------------------
# ONNX


def _onnx(model, path: Path, quantize, images, keep_float, verbose):
    with tempfile.TemporaryDirectory() as folder, atomic_path(path, suffix=".onnx") as temporary:
        if quantize is None:
            export_onnx(model, temporary)
            return
        float_file = export_onnx(model, Path(folder) / "float.onnx")
        if quantize == "float16":
            onnx = require("onnx", "float16 ONNX export")
            float16 = require("onnxconverter_common.float16", "float16 ONNX export")
            # keep_io_types: the file takes and returns float32, as the Keras model does.
            converted = float16.convert_float_to_float16(onnx.load(float_file), keep_io_types=True)
            onnx.save(converted, temporary)
        else:
            _onnx_int8(float_file, Path(folder), temporary, images, keep_float, verbose)


def _onnx_int8(float_file: Path, folder: Path, destination: str, images, keep_float, verbose):
    require("sympy", "ONNX quantization's graph pre-processing")
    quantization = require("onnxruntime.quantization", "ONNX int8 export")
    onnx = require("onnx", "ONNX int8 export")
    prepared = folder / "prepared.onnx"
    # Folds the BatchNorm affines left beside the convolutions; quantizing without it
    # wraps every one in its own quantize-dequantize pair (61% agreement instead of 98%).
    quantization.shape_inference.quant_pre_process(str(float_file), str(prepared))
    pattern = _float_pattern(keep_float)
    # tf2onnx names a convolution fused with its BatchNorm "Conv__<n>": its weights (input 1)
    # still carry the layer's name.
    excluded = (
        []
        if pattern is None
        else [
            node.name
            for node in onnx.load(prepared).graph.node
            if any(pattern.search(name) for name in (node.name, *node.output, *node.input[1:2]))
        ]
    )

    class Reader(quantization.CalibrationDataReader):
        """One image at a time (the calibrator stacks its batches, which must be the same size),
        over the range of images that `set_range` selects."""

        def __init__(self):
            self.bar = keras.utils.Progbar(len(images)) if verbose else None
            self.set_range(0, len(images))

        def __len__(self):
            return len(images)

        def set_range(self, start_index, end_index):
            self.batches = iter(images[start_index:end_index, None])

        def get_next(self):
            batch = next(self.batches, None)
            if batch is not None and self.bar:
                self.bar.add(1)
            return None if batch is None else {ONNX_INPUT_NAME: batch}

    # Unsigned activations with signed weights (U8S8): ONNX Runtime's fastest x86 kernels (Lite0 at
    # batch 1 ran in about half the time of S8S8). On x86 CPUs without VNNI (AVX2 only) those kernels
    # add pairs of u8*s8 products in 16 bits, which saturate; 7-bit weights (reduce_range) cannot.
    # Lite0, 500 held-out photo crops, agreement with float top-1 (all / where float is >= 50% sure):
    # full-range weights 93.0% / 100% with VNNI but 83.4% / 96.1% without (AVX2); reduce_range
    # 90.2% / 97.8% on both, the same file computing the same outputs on either kind of CPU.
    quantization.quantize_static(
        str(prepared),
        destination,
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        per_channel=True,
        activation_type=quantization.QuantType.QUInt8,
        weight_type=quantization.QuantType.QInt8,
        reduce_range=True,
        calibrate_method=quantization.CalibrationMethod.Percentile,
        nodes_to_exclude=excluded,
        # The calibrator holds every activation of the images it reads before making its
        # histograms (Lite2, 200 images: over 24 GiB); in chunks, the histograms grow chunk by chunk.
        extra_options={"CalibStridedMinMax": _chunk_size(len(images))},
    )


def _chunk_size(count: int, largest: int = 16) -> int:
    """The largest divisor of `count` up to `largest`: ORT's chunks must divide the images evenly."""
    return max(size for size in range(1, min(count, largest) + 1) if count % size == 0)


# ---------------------------------------------------------------------------
# OpenVINO


def _openvino(model, path: Path, quantize, images, keep_float, verbose):
    openvino = require("openvino", "OpenVINO export")
    with folder_beside(path) as folder:
        # From our ONNX file rather than Keras's OpenVINO export: that one converts the TF graph,
        # where every swish (a tf.custom_gradient) leaves a dangling extra output in the IR.
        ov_model = openvino.convert_model(export_onnx(model, folder / "float.onnx"))
        if quantize == "int8":
            ov_model = _nncf_int8(ov_model, images, keep_float, verbose)
        written = folder / path.name
        openvino.save_model(ov_model, written, compress_to_fp16=quantize == "float16")
        replace_together([(written.with_suffix(".bin"), path.with_suffix(".bin")), (written, path)], folder)


def _openvino_op_names(op):
    """An operation's name, its outputs' names and, for a convolution or matmul, its weights' name.

    Converted from ONNX, a convolution fused with its BatchNorm carries the BatchNorm's name and
    the classifier's matmul only its output's; the weight constants keep their layer's name.
    """
    yield op.get_friendly_name()
    for output in op.outputs():
        yield from output.get_names()
    if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul"):
        weights = op.input_value(1).get_node()
        while weights.get_type_name() in ("Reshape", "Convert", "Transpose", "Unsqueeze"):
            weights = weights.input_value(0).get_node()
        yield weights.get_friendly_name()


def _nncf_int8(ov_model, images, keep_float, verbose):
    nncf = require("nncf", "OpenVINO int8 export")
    pattern = _float_pattern(keep_float)
    ignored = None
    if pattern is not None:
        names = [
            op.get_friendly_name()
            for op in ov_model.get_ops()
            if any(pattern.search(name) for name in _openvino_op_names(op))
        ]
        ignored = nncf.IgnoredScope(names=names, validate=False)
    dataset = nncf.Dataset([image[None] for image in images])
    with contextlib.nullcontext() if verbose else _quiet_nncf(nncf):
        return nncf.quantize(
            ov_model,
            dataset,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(images),
            fast_bias_correction=False,  # full bias correction: half the logit error of the fast one
            **({} if ignored is None else {"ignored_scope": ignored}),
        )


@contextlib.contextmanager
def _quiet_nncf(nncf):
    import logging

    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------------
# SavedModel


def _saved_model(model, path: Path, quantize, images, keep_float, verbose):
    with folder_beside(path) as folder:
        written = folder / "saved_model"
        model.export(str(written), format="tf_saved_model", input_signature=_signature(model), verbose=False)
        _replace_folder(written, path)


def _replace_folder(new: Path, path: Path):
    """`new` in place of `path` (checked by `_check_replaceable`: an earlier SavedModel, or empty)."""
    # A folder cannot be renamed over another: move the old one aside (it is deleted with the
    # temporary folder), then move the new one in.
    replace_together([(new, path)], new.parent)


# One writer per format of `formats.EXPORT_FORMATS`.
WRITERS = {"litert": _litert, "onnx": _onnx, "openvino": _openvino, "saved_model": _saved_model}
