"""Inference-only rewrites of a trained model."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import keras
import numpy as np

from keras_efficientnets._common.fileio import atomic_path, check_output_name, check_writable_folder
from keras_efficientnets._common.validation import check_int
from keras_efficientnets.deploy.predictors import OnnxPredictor  # re-exported: earlier code imports it here

__all__ = ["OnnxPredictor", "export_onnx", "fold_batch_norm"]

ONNX_INPUT_NAME = "images"

_FOLDABLE = ("Conv2D", "DepthwiseConv2D")
_INFERENCE_NO_OPS = ("Dropout",)


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """Returns a copy of `model` for inference, with BatchNorm folded into the convolutions.

    Each BatchNormalization that directly follows a Conv2D or DepthwiseConv2D
    (and is that layer's only consumer) becomes part of the convolution's
    kernel and a new bias, since in inference mode it is an affine map per
    channel. Dropout and drop-connect layers, which do nothing at inference,
    are removed. The result is a plain functional model of built-in layers
    that computes the same outputs, faster; `model` itself is not changed.
    Only for inference: the folded model has no batch statistics to train.

    Args:
        model: A functional model, e.g. any model of this package.

    Returns:
        A new `keras.Model` with the same inputs and outputs.

    Example:
        >>> from keras_efficientnets import EfficientNetB0
        >>> model = EfficientNetB0(weights=None, input_shape=(64, 64, 3))
        >>> folded = fold_batch_norm(model)
        >>> any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.layers)
        False
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "_operations"):
        raise TypeError(f"`model` must be a functional keras.Model. Received: model={model!r}")
    config = model.get_config()
    if "layers" not in config:
        raise TypeError(
            f"`model` must be a functional keras.Model (a Sequential or subclassed model has no "
            f"graph to rewrite). Received: model={type(model).__name__}"
        )
    layers_by_name = {layer["name"]: layer for layer in config["layers"]}
    folds = _find_folds(config["layers"], layers_by_name)
    removed = {
        name: _single_input(layer)
        for name, layer in layers_by_name.items()
        if layer["class_name"] in _INFERENCE_NO_OPS
    }
    removed.update(folds)

    new_config = copy.deepcopy(config)
    new_config["layers"] = [
        _rewired(layer, removed) for layer in new_config["layers"] if layer["name"] not in removed
    ]
    for layer in new_config["layers"]:
        if layer["name"] in folds.values():
            layer["config"]["use_bias"] = True
    new_config["output_layers"] = _rewired_references(new_config["output_layers"], removed)
    new_config["name"] = f"{model.name}_folded"

    folded = keras.Model.from_config(new_config)
    conv_to_bn = {conv: bn for bn, conv in folds.items()}
    for layer in folded.layers:
        if not layer.weights:
            continue
        source = model.get_layer(layer.name)
        if layer.name in conv_to_bn:
            layer.set_weights(_folded_weights(source, model.get_layer(conv_to_bn[layer.name])))
        else:
            layer.set_weights(source.get_weights())
    return folded


def _single_input(layer_config) -> str | None:
    """The name of the layer feeding a single-input layer."""
    nodes = layer_config.get("inbound_nodes", [])
    if len(nodes) != 1:
        return None
    tensors = [arg for arg in nodes[0]["args"] if _is_tensor_reference(arg)]
    return tensors[0]["config"]["keras_history"][0] if len(tensors) == 1 else None


def _is_tensor_reference(value) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _find_folds(layer_configs, layers_by_name) -> dict[str, str]:
    """Maps each foldable BatchNormalization to the convolution before it."""
    consumers: dict[str, int] = {}
    for layer in layer_configs:
        for node in layer.get("inbound_nodes", []):
            for reference in _tensor_references(node["args"]):
                name = reference["config"]["keras_history"][0]
                consumers[name] = consumers.get(name, 0) + 1
    folds = {}
    for layer in layer_configs:
        if layer["class_name"] != "BatchNormalization":
            continue
        source = _single_input(layer)
        if (
            source is not None
            and layers_by_name[source]["class_name"] in _FOLDABLE
            and consumers.get(source) == 1
            and len(layers_by_name[source].get("inbound_nodes", [])) == 1
        ):
            folds[layer["name"]] = source
    return folds


def _tensor_references(value):
    if _is_tensor_reference(value):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensor_references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensor_references(item)


def _resolve(name, removed):
    while name in removed:
        name = removed[name]
    return name


def _rewired(layer_config, removed):
    for node in layer_config.get("inbound_nodes", []):
        for reference in _tensor_references(node):
            history = reference["config"]["keras_history"]
            history[0] = _resolve(history[0], removed)
    return layer_config


def _rewired_references(references, removed):
    """Output references are [name, node, tensor] lists, or nested lists of them."""
    if references and isinstance(references[0], str):
        return [_resolve(references[0], removed), *references[1:]]
    return [_rewired_references(reference, removed) for reference in references]


def _folded_weights(conv, batch_norm):
    """Kernel and bias of `conv` followed by `batch_norm` in inference mode, as one conv."""
    weights = [np.asarray(w, dtype="float64") for w in conv.get_weights()]
    kernel = weights[0]
    bias = weights[1] if len(weights) > 1 else 0.0
    gamma, beta, mean, variance = _batch_norm_parameters(batch_norm)
    scale = gamma / np.sqrt(variance + batch_norm.epsilon)
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        # Kernel (kh, kw, channels, multiplier): output channel c * multiplier + m.
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    dtype = conv.get_weights()[0].dtype
    return [kernel.astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]


def _batch_norm_parameters(batch_norm):
    """gamma, beta, moving mean, moving variance, with defaults for center/scale=False."""
    values = {
        w.path.rsplit("/", 1)[-1]: np.asarray(keras.ops.convert_to_numpy(w), "float64")
        for w in batch_norm.weights
    }
    mean, variance = values["moving_mean"], values["moving_variance"]
    gamma = values.get("gamma", np.ones_like(mean))
    beta = values.get("beta", np.zeros_like(mean))
    return gamma, beta, mean, variance


# ---------------------------------------------------------------------------
# ONNX: export through Keras's own exporter, run with ONNX Runtime.


def export_onnx(model: keras.Model, path: str | os.PathLike, *, opset: int | None = None) -> Path:
    """Writes `model` as an ONNX file that ONNX Runtime (or OpenVINO) can run.

    A thin wrapper around ``model.export(path, format="onnx")`` that works on a
    model that has never been called, names the input ``images`` and keeps the
    batch size (and any spatial size left None) dynamic. The models of this
    package export as they are: their input normalization is a weightless
    Rescaling layer, so no constant goes missing in the graph. Fold the
    BatchNorm first (`fold_batch_norm`) for a smaller file; ONNX Runtime
    folds it either way. Needs ``tf2onnx`` on the TensorFlow backend
    (``pip install "keras_efficientnets[onnx]"``). `deploy.export` does the
    same with `format="onnx"`, and adds float16 and int8. Every variant exports
    except L2 and V2-XL: tf2onnx needs more than 24 GiB of memory to convert
    their 481M and 208M parameters (L2's 1.9 GB of float32 weights are also
    near ONNX's 2 GB protobuf limit).

    Args:
        model: A single-input Keras model, e.g. any model of this package.
        path: Where to write the ``.onnx`` file; parent folders must exist.
        opset: ONNX opset version; None for the exporter's default.

    Returns:
        The path written.

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights=None, input_shape=(96, 96, 3))
        >>> path = export_onnx(model, "/tmp/lite0.onnx")  # doctest: +SKIP
        >>> OnnxPredictor(path)(np.zeros((1, 96, 96, 3), "float32")).shape  # doctest: +SKIP
        (1, 1000)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    if len(model.inputs) != 1:
        raise ValueError(
            f"`export_onnx` supports models with one input; this one has {len(model.inputs)}. "
            f"Received: model.inputs={model.inputs!r}"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike. Received: path={path!r}")
    if opset is not None:
        opset = check_int("opset", opset, minimum=1)
    check_output_name(path, "path")
    check_writable_folder(path, "path")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; export_onnx writes an .onnx file there.")
    signature = [keras.InputSpec(shape=model.input_shape, dtype=model.inputs[0].dtype, name=ONNX_INPUT_NAME)]
    with atomic_path(path, suffix=".onnx") as temporary:
        model.export(temporary, format="onnx", input_signature=signature, opset_version=opset, verbose=False)
    return path
