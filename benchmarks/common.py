"""Helpers shared by the benchmark scripts: timing, peak memory, machine facts, peer models.

Each benchmark prints one JSON object per measurement on a line that starts
with ``RESULT`` (`emit`), so that `run_benchmark` can run it in a subprocess and
collect the figures (`run_all` does, and so do benchmarks that run parts of
themselves apart); what else it prints is for a human.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# As the command line does: TensorFlow's oneDNN kernels on, unless the run asks otherwise
# (the oneDNN rows of bench_inference set it per subprocess).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

RESULT_PREFIX = "RESULT "
ROOT = Path(__file__).resolve().parents[1]


def emit(**fields):
    """Prints one measurement for `run_all.py` (and the reader)."""
    print(RESULT_PREFIX + json.dumps(fields), flush=True)


def parse_records(lines) -> list[dict]:
    """The measurements among a benchmark's output lines."""
    return [json.loads(line[len(RESULT_PREFIX) :]) for line in lines if line.startswith(RESULT_PREFIX)]


def run_benchmark(
    module: str, *arguments: str, label: str | None = None, echo: bool = True, env=None
) -> list[dict]:
    """Runs ``python -m benchmarks.<module> ARGUMENTS`` in its own process; returns its measurements.

    Each benchmark runs apart: its own memory (peak RSS is its own) and its own
    Keras backend. Its output is echoed; on failure, the end of its stderr.
    """
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    lines = completed.stdout.splitlines()
    if echo:
        for line in lines:
            print(line, flush=True)
    records = parse_records(lines)
    if completed.returncode or not records:
        print(f"{label or module} failed:\n{completed.stderr[-3000:]}", flush=True)
    return records


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_flags() -> list[str]:
    """The CPU's vector and matrix extensions that decide which kernels TensorFlow and ONNX Runtime use."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in present]
    except OSError:
        pass
    return []


def onednn_state() -> str:
    """Whether TensorFlow's oneDNN kernels are on in this process (TensorFlow must be imported)."""
    from tensorflow.python.util import _pywrap_util_port

    return "on" if _pywrap_util_port.IsMklEnabled() else "off"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict:
    """Versions of the packages the figures depend on; absent ones are left out."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "jax", "torch", "onnxruntime", "tf2onnx", "openvino", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def keras_applications_twin(ours):
    """keras.applications' model of the same variant and input size, holding `ours`'s weights.

    The layer names are the same (they are the contract with the published
    weight files); keras.applications' Normalization layer has no peer in
    ours (a weightless Rescaling) and keeps its ImageNet constants.
    """
    import keras

    constructor = getattr(keras.applications, ours.name.replace("efficientnetb", "EfficientNetB"))
    peer = constructor(weights=None, input_shape=ours.input_shape[1:])
    for layer in peer.layers:
        if layer.weights and layer.name != "normalization":
            layer.set_weights(ours.get_layer(layer.name).get_weights())
    return peer


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """fp32 GFLOP/s of a square TensorFlow matmul: the practical peak to compare models with."""
    import numpy as np
    import tensorflow as tf

    a = tf.constant(np.random.default_rng(0).standard_normal((size, size), dtype="float32"))
    matmul = tf.function(lambda: tf.matmul(a, a))
    seconds = median_seconds(lambda: matmul().numpy(), repeats, warmup=2)
    return 2 * size**3 / seconds / 1e9
