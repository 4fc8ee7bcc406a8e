"""Weight tables: reading Keras weight files, and assigning a table to a model by name.

A *weight table* is ``{layer name: {weight name or position: array}}`` in
Keras naming and layout (``"stem_conv": {"kernel": ...}``). Every source of
weights (a Keras file here, a converted checkpoint in `checkpoints`) becomes
one, and `assign_weights` loads it into a model: all of it or, if anything is
missing, unexpected, of the wrong shape or not a number, none of it.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile

import numpy as np

__all__ = ["assign_weights", "read_weights_file"]


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


# No weight of any variant comes near this (L2's largest is under 100 MB); a file that declares
# more is refused before anything is read.
_MAX_DATASET_BYTES = 2**31


# What h5py raises for a damaged file: RuntimeError for damaged data, UnicodeDecodeError for a
# damaged name, ValueError for a damaged data type, ...; an error inside a visitor (`visititems`)
# arrives as a SystemError caused by it.
_DAMAGED_FILE_ERRORS = (OSError, KeyError, RuntimeError, ValueError, SystemError, zipfile.BadZipFile)


def _outside_problem(root) -> str | None:
    """Why reading the file would touch other files (HDF5 external links, external storage,
    virtual datasets) or more memory than any weight takes; None if it would not."""
    import h5py

    problems = []  # h5py's visitors must not raise: collected, then the first returned

    def check_link(name, link):
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"links {name!r} to another file, {link.filename!r} (HDF5 external link refused)")

    def check_dataset(name, item):
        if not isinstance(item, h5py.Dataset):
            return
        if item.is_virtual or item.external:
            kind = "virtual dataset" if item.is_virtual else "external storage"
            problems.append(f"keeps {name!r} in other files (HDF5 {kind} refused)")
        elif item.size * item.dtype.itemsize > _MAX_DATASET_BYTES:
            problems.append(
                f"declares {name!r} of shape {item.shape}, larger than any weight of any EfficientNet "
                "(refused before reading)"
            )

    root.visititems_links(check_link)
    if not problems:  # visiting the items follows the links
        root.visititems(check_dataset)
    return problems[0] if problems else None


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
    path = os.fspath(path)
    try:
        problem, table = _read_checked(path)
    except _DAMAGED_FILE_ERRORS as error:
        if isinstance(error, SystemError) and error.__cause__ is not None:
            error = error.__cause__
        raise ValueError(
            f"Could not read weights from {path!r}: the file is truncated, corrupt or not a "
            f"Keras weights file ({type(error).__name__}: {error}). Delete it and download or "
            "convert it again."
        ) from None
    if problem:
        raise ValueError(f"{path} {problem}: a weights file must hold its own weights.")
    return table


def _read_checked(path: str) -> tuple[str | None, dict | None]:
    """(why the file is refused, None) before anything is read, or (None, its weight table)."""
    import h5py

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data = archive.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as root:
            return _checked_table(root, _read_keras3_h5)
    with h5py.File(path, "r") as root:
        legacy = "layer_names" in root.attrs or "model_weights" in root or "layer_names0" in root.attrs
        return _checked_table(root, _read_legacy_h5 if legacy else _read_keras3_h5)


def _checked_table(root, reader) -> tuple[str | None, dict | None]:
    problem = _outside_problem(root)
    return (problem, None) if problem else (None, reader(root))


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
        ValueError: Missing, unexpected, shape-mismatched, non-numeric or
            non-finite weights; the message names the source and lists the first few of
            each and their counts. The model's weights are then unchanged.

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
    missing, unexpected, mismatched, skipped, not_numbers = [], [], [], [], []
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
            if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
                not_numbers.append(f"{layer_name}/{variable.name} ({value.dtype})")
                continue
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                not_numbers.append(f"{layer_name}/{variable.name} (NaN or infinite)")
                continue
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
    if not_numbers:
        problems.append(f"{len(not_numbers)} values of the file are not numbers: {_first(not_numbers, 3)}")
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
