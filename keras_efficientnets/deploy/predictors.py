"""Running exported models: one predictor per runtime, one `load_predictor` for every file. Keras-free.

Every predictor takes what the Keras model took (a batch of images, RGB in
[0, 255] for this package's models) and returns what it returned: an array, or
a dict by output name for a model with several outputs (a backbone's
``P1`` ... ``P5``). `predict` runs any number of images in batches, like
``keras.Model.predict``. The runtimes are optional dependencies, imported when
a file needs them:

==========  ====================  =======================================
file        runtime               install
==========  ====================  =======================================
.tflite     LiteRT (ai-edge-litert)  ``pip install "keras_efficientnets[litert]"``
.onnx       ONNX Runtime           ``pip install "keras_efficientnets[onnx]"``
.xml        OpenVINO               ``pip install "keras_efficientnets[openvino]"``
folder      TensorFlow (SavedModel)   installed with the package
==========  ====================  =======================================
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from keras_efficientnets._common.optional import require
from keras_efficientnets._common.validation import batch_shape_text, check_int, fits_batch_shape, received
from keras_efficientnets.deploy.formats import EXPORT_FORMATS, PATH_KINDS

__all__ = [
    "LiteRTPredictor",
    "OnnxPredictor",
    "OpenVINOPredictor",
    "Predictor",
    "SavedModelPredictor",
    "load_predictor",
]


@contextlib.contextmanager
def _runtime_errors(path, doing: str):
    """A runtime's own exception about a file (ONNX Runtime's InvalidProtobuf, OpenVINO's or
    TensorFlow's RuntimeError, ...) as our ValueError, naming the file; the original is chained."""
    try:
        yield
    except Exception as error:
        detail = (str(error).strip().splitlines() or [""])[0][:300]
        raise ValueError(
            f"{path} could not be {doing} ({type(error).__name__}: {detail}). Is it a complete, "
            "unmodified file written by `export`?"
        ) from error


class Predictor:
    """What every runtime's predictor shares: input checks, batching, outputs by name.

    A subclass sets `input_name`, `output_names` and `input_shape` (without
    the batch axis; None where the file leaves a size open) and implements
    `_run(batch) -> list of arrays` in the order of `output_names`.
    """

    input_name: str
    output_names: list[str]
    input_shape: tuple

    def __call__(self, images) -> np.ndarray | dict[str, np.ndarray]:
        """The outputs for one batch of images."""
        images = self._checked(images)
        with _runtime_errors(self.path, "run"):
            return self._named(self._run(images))

    def predict(self, images, batch_size: int = 32) -> np.ndarray | dict[str, np.ndarray]:
        """The outputs for any number of images, run `batch_size` at a time."""
        batch_size = check_int("batch_size", batch_size, minimum=1)
        images = self._checked(images)
        with _runtime_errors(self.path, "run"):
            batches = [
                self._run(images[start : start + batch_size]) for start in range(0, len(images), batch_size)
            ]
        return self._named([np.concatenate(outputs) for outputs in zip(*batches, strict=True)])

    def _named(self, outputs: list[np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        """One output as an array, several as a dict by name, as Keras returns them."""
        return outputs[0] if len(outputs) == 1 else dict(zip(self.output_names, outputs, strict=True))

    def _checked(self, images) -> np.ndarray:
        images = np.asarray(images, dtype="float32")
        if not fits_batch_shape(images.shape, self.input_shape):
            raise ValueError(
                f"`images` must be shaped {batch_shape_text(self.input_shape, 'batch')}, "
                f"as the exported model takes. Received: images.shape={images.shape}"
            )
        if not len(images):
            raise ValueError(f"`images` must be a non-empty batch. Received: images.shape={images.shape}")
        return images

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r})"


def _static_shape(dims) -> tuple:
    """A runtime's shape without the batch axis, with None for open sizes (-1, 0, '?' or names)."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in list(dims)[1:])


class OnnxPredictor(Predictor):
    """Runs an ``.onnx`` file with ONNX Runtime on the CPU.

    Args:
        path: An ``.onnx`` file, e.g. written by `export` or `export_onnx`.
        threads: Intra-op threads; None lets ONNX Runtime use every core.

    Example:
        >>> predictor = OnnxPredictor("/tmp/lite0.onnx")  # doctest: +SKIP
        >>> predictor.predict(np.zeros((64, 96, 96, 3), "float32"), batch_size=32).shape  # doctest: +SKIP
        (64, 1000)
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        onnxruntime = require("onnxruntime", "OnnxPredictor")
        self.path = _existing_file(path, "ONNX")
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = check_int("threads", threads, minimum=1)
        with _runtime_errors(self.path, "loaded by ONNX Runtime"):
            self.session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.input_shape = _static_shape(model_input.shape)
        self.output_names = [output.name for output in self.session.get_outputs()]

    def _run(self, batch):
        return self.session.run(None, {self.input_name: batch})


class LiteRTPredictor(Predictor):
    """Runs a ``.tflite`` file with the LiteRT interpreter (``ai-edge-litert``) and XNNPACK.

    Int8 files made by `export` take and return float32, like the Keras model.

    Args:
        path: A ``.tflite`` file.
        threads: Interpreter threads; None for LiteRT's default.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        interpreter_lib = require("ai_edge_litert.interpreter", "Running a .tflite file")
        self.path = _existing_file(path, "LiteRT (.tflite)")
        if threads is not None:
            threads = check_int("threads", threads, minimum=1)
        with _runtime_errors(self.path, "loaded by LiteRT"):
            damage = _shape_damage(interpreter_lib, self.path)
        if damage:
            raise ValueError(f"{self.path} is damaged: {damage}")
        with _runtime_errors(self.path, "loaded by LiteRT"):
            self.interpreter = interpreter_lib.Interpreter(model_path=str(self.path), num_threads=threads)
            signatures = self.interpreter.get_signature_list()
        if not signatures:
            raise ValueError(
                f"{self.path} has no signature to run; export it with `export(format='litert')`."
            )
        with _runtime_errors(self.path, "loaded by LiteRT"):
            # The signature runner resizes the input to each batch by itself.
            self.runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            (self.input_name,) = self.runner.get_input_details()
            details = self.runner.get_input_details()[self.input_name]
            self.input_shape = _static_shape(details["shape_signature"])
            self.output_names = list(self.runner.get_output_details())

    def _run(self, batch):
        outputs = self.runner(**{self.input_name: batch})
        return [outputs[name] for name in self.output_names]


def _shape_damage(interpreter_lib, path: Path) -> str | None:
    """The first tensor of a ``.tflite`` file declared with a shape its operator does not make.

    XNNPACK sizes its buffers by the declared shapes, so one damaged dimension can ask for
    gigabytes (found by fuzzing: one byte turned an 8 into 4128776, 12 GB). LiteRT's reference
    kernels recompute every shape when tensors are allocated; an interpreter with no delegate,
    allocated but never run, shows any difference without touching that memory.
    """
    reference = interpreter_lib.Interpreter(
        model_path=str(path),
        experimental_op_resolver_type=interpreter_lib.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    declared = {tensor["index"]: tensor for tensor in reference.get_tensor_details()}
    reference.allocate_tensors()
    for tensor in reference.get_tensor_details():
        if tensor["index"] not in declared:  # the kernels' scratch tensors
            continue
        shape = tuple(int(d) for d in declared[tensor["index"]]["shape"])
        signature = tuple(int(d) for d in declared[tensor["index"]]["shape_signature"])
        computed = tuple(int(d) for d in tensor["shape"])
        fits = len(shape) == len(signature) == len(computed) and all(
            _dimension_fits(*dims) for dims in zip(shape, signature, computed, strict=True)
        )
        if not fits:
            return (
                f"tensor {tensor['name']!r} is declared with shape {shape} (signature "
                f"{signature}), but its operator makes {computed}."
            )
    return None


def _dimension_fits(declared: int, signature: int, computed: int) -> bool:
    if signature == -1:
        # A dynamic dimension's declared size is the converter's value for a batch of 1, which
        # an operator may multiply: a dilated convolution's SpaceToBatchND makes a batch of 4
        # from 1 image. Declared larger than made is what damage looks like.
        return declared <= computed
    return declared == signature == computed


class OpenVINOPredictor(Predictor):
    """Runs an OpenVINO IR (``.xml`` with its ``.bin``) on the CPU.

    Args:
        path: The ``.xml`` file.
        threads: Inference threads; None for OpenVINO's default.
        precision: The CPU plugin's inference precision: "f32" (default), so
            that the outputs are the float model's on every CPU; None for
            OpenVINO's own choice, bf16 on CPUs with AVX-512 BF16 or AMX
            (faster, about 5% of the logits' scale off).
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, precision: str | None = "f32"):
        openvino = require("openvino", "Running an OpenVINO .xml file")
        self.path = _existing_file(path, "OpenVINO (.xml)")
        if not self.path.with_suffix(".bin").is_file():
            raise FileNotFoundError(
                f"{self.path} needs its weights beside it: {self.path.with_suffix('.bin')}"
            )
        config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = check_int("threads", threads, minimum=1)
        core = openvino.Core()
        with _runtime_errors(self.path, "loaded by OpenVINO"):
            model = core.read_model(str(self.path))
            self.compiled = core.compile_model(model, "CPU", config)
        self.input_name = model.inputs[0].get_any_name()
        self.input_shape = tuple(
            None if dim.is_dynamic else dim.get_length()
            for dim in list(model.inputs[0].get_partial_shape())[1:]
        )
        self.output_names = [output.get_any_name() for output in model.outputs]
        self.request = self.compiled.create_infer_request()

    def _run(self, batch):
        results = self.request.infer({self.input_name: batch})
        return [np.asarray(results[output]) for output in self.compiled.outputs]


class SavedModelPredictor(Predictor):
    """Runs a SavedModel folder's ``serving_default`` signature with TensorFlow.

    Args:
        path: The SavedModel folder, e.g. written by `export(format="saved_model")`.
    """

    def __init__(self, path: str | os.PathLike):
        tf = require("tensorflow", "Running a SavedModel")
        self.path = Path(path)
        if not (self.path / "saved_model.pb").is_file():
            raise FileNotFoundError(
                f"No SavedModel (saved_model.pb) in `path`. {received('path', str(path))}"
            )
        with _runtime_errors(self.path, "loaded by TensorFlow"):
            self.loaded = tf.saved_model.load(str(self.path))
        if "serving_default" not in self.loaded.signatures:
            raise ValueError(f"{self.path} has no serving_default signature; export it with this package.")
        self.signature = self.loaded.signatures["serving_default"]
        _, inputs = self.signature.structured_input_signature
        (self.input_name,) = inputs
        self.input_shape = tuple(inputs[self.input_name].shape)[1:]
        self.output_names = sorted(self.signature.structured_outputs)

    def _run(self, batch):
        outputs = self.signature(**{self.input_name: batch})
        return [outputs[name].numpy() for name in self.output_names]


# What each kind of file starts with, to tell a renamed file from a real one.
_TFLITE_IDENTIFIER = b"TFL3"


def load_predictor(path: str | os.PathLike, *, threads: int | None = None) -> Predictor:
    """The predictor for an exported model, picked from the file: LiteRT, ONNX Runtime, OpenVINO or TF.

    Args:
        path: A ``.tflite``, ``.onnx`` or OpenVINO ``.xml`` file, or a SavedModel folder.
        threads: Threads for the runtime; None for its default.

    Raises:
        ValueError: A file that is none of these kinds (named, with the valid ones).
        ImportError: The runtime is missing; the message names the pip command.

    Example:
        >>> predictor = load_predictor("lite0_int8.tflite")  # doctest: +SKIP
        >>> predictor.predict(images).argmax(axis=-1)  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike. {received('path', path)}")
    path = Path(path)
    if path.is_dir():
        return SavedModelPredictor(path)
    return PREDICTORS[_file_format(path)](path, threads=threads)


def _file_format(path: Path) -> str:
    by_suffix = {f.suffix: f.name for f in EXPORT_FORMATS if f.suffix}
    if path.suffix.lower() not in by_suffix:
        raise ValueError(f"`path` must be {PATH_KINDS}. Received: path={str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {str(path)!r}. Pass {PATH_KINDS}.")
    with open(path, "rb") as f:
        head = f.read(512)
    format = by_suffix[path.suffix.lower()]
    looks_right = {
        "litert": head[4:8] == _TFLITE_IDENTIFIER,
        "onnx": bool(head) and not head.lstrip().startswith((b"<", b"{")) and head[4:8] != _TFLITE_IDENTIFIER,
        "openvino": head.lstrip().startswith(b"<?xml") and b"<net" in head,
    }[format]
    if not looks_right:
        raise ValueError(
            f"{path} does not hold the kind of model its {path.suffix} name says. Pass {PATH_KINDS}."
        )
    return format


def _existing_file(path, kind: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike. {received('path', path)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"No {kind} file at `path`. {received('path', path)}")
    return Path(path)


# One predictor per format of `formats.EXPORT_FORMATS`.
PREDICTORS = {
    "litert": LiteRTPredictor,
    "onnx": OnnxPredictor,
    "openvino": OpenVINOPredictor,
    "saved_model": SavedModelPredictor,
}
