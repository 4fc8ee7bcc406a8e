"""Training step and peak memory: ours vs keras.applications, and ours with remat=True.

One SGD step (``train_on_batch``, ``training=True``) on random
images and labels. Each configuration runs in its own subprocess, so the peak
resident memory (``ru_maxrss``) of one does not hide the other's; the peak
includes TensorFlow itself (about 1 GiB before the model exists), printed
separately as the baseline. Printed: median steps/s after a warm-up step
(which traces the graph), peak RSS, and ratios to keras.applications and to
ours without remat. Ours also runs on JAX (plain and after `optimize_for_backend`) and on
PyTorch, one round each, against keras.applications on TensorFlow.

ours and keras.applications run the same layers (the tests hold their outputs
equal), so their steps differ only by noise and by the few layers that are not
alike (keras.applications pads explicitly before each strided convolution and
normalizes with two layers where ours has one Rescaling). On a shared 2-core
machine one process's median moves by 10-20% from run to run, so the pair runs
in alternating rounds, each round a fresh process per model, and the spread
across rounds is printed beside the median.

Run:

    python -m benchmarks.bench_train [--batch 16] [--size 224] [--steps 5] [--rounds 3] [--remat-batch 32]
"""

from __future__ import annotations

import argparse
import os

from benchmarks import common

MODELS = ("keras.applications", "ours", "ours remat")
# Ours on the other backends, each against keras.applications on TensorFlow in the table.
BACKEND_MODELS = {
    "ours, jax": "jax",
    "ours, jax, optimize_for_backend": "jax",
    "ours, torch": "torch",
}


def one_configuration(model_name, batch, size, steps):
    import keras
    import numpy as np

    import keras_efficientnets as ke

    baseline = common.peak_rss_mib()
    ours = ke.EfficientNetB0(weights=None, input_shape=(size, size, 3), remat=model_name == "ours remat")
    model = common.keras_applications_twin(ours) if model_name == "keras.applications" else ours
    if model_name.endswith("optimize_for_backend"):
        model = ke.optimize_for_backend(ours)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, 1000, (batch,))
    seconds = common.median_seconds(lambda: model.train_on_batch(images, labels), steps, warmup=1)
    common.emit(
        kind="train",
        model=model_name,
        batch=batch,
        size=size,
        steps_per_second=1 / seconds,
        peak_rss_mib=common.peak_rss_mib(),
        baseline_rss_mib=baseline,
    )


def run_in_subprocess(model_name, batch, size, steps) -> list[dict]:
    arguments = ("--one", model_name, "--batch", str(batch), "--size", str(size), "--steps", str(steps))
    environment = {**os.environ, "KERAS_BACKEND": BACKEND_MODELS.get(model_name, "tensorflow")}
    return common.run_benchmark("bench_train", *arguments, label=model_name, echo=False, env=environment)


def emit_summary(records):
    """One row per model: the median round's steps/s, every round's rate, the largest peak RSS."""
    if not records:
        return
    rates = sorted(r["steps_per_second"] for r in records)
    largest = max(records, key=lambda r: r["peak_rss_mib"])
    common.emit(**{**largest, "steps_per_second": rates[len(rates) // 2], "rounds": rates})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per model, alternating")
    parser.add_argument(
        "--remat-batch", type=int, default=32, help="also ours with and without remat at this batch; 0: skip"
    )
    parser.add_argument("--no-backends", action="store_true", help="skip the JAX and PyTorch rows")
    parser.add_argument("--one", choices=MODELS + tuple(BACKEND_MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_configuration(args.one, args.batch, args.size, args.steps)
        return
    # Alternating rounds: a slow minute on the shared machine hits both models alike.
    rounds = {name: [] for name in MODELS[:2]}
    for _ in range(args.rounds):
        for model_name in MODELS[:2]:
            rounds[model_name] += run_in_subprocess(model_name, args.batch, args.size, args.steps)
    for model_name in MODELS[:2]:
        emit_summary(rounds[model_name])
    emit_summary(run_in_subprocess(MODELS[2], args.batch, args.size, args.steps))
    if args.remat_batch:
        for model_name in ("ours", "ours remat"):
            emit_summary(run_in_subprocess(model_name, args.remat_batch, args.size, max(1, args.steps - 2)))
    if not args.no_backends:
        for model_name in BACKEND_MODELS:
            emit_summary(run_in_subprocess(model_name, args.batch, args.size, args.steps))


if __name__ == "__main__":
    main()
