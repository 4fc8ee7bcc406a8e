"""Training step and peak memory: ours vs keras.applications, and ours with remat=True.

One SGD step (``train_on_batch``, ``training=True``, TF backend) on random
images and labels. Each configuration runs in its own subprocess, so the peak
resident memory (``ru_maxrss``) of one does not hide the other's; the peak
includes TensorFlow itself (about 1 GiB before the model exists), printed
separately as the baseline. Printed: median steps/s after a warm-up step
(which traces the graph), peak RSS, and ratios to keras.applications and to
ours without remat.

Run:

    python -m benchmarks.bench_train [--batch 16] [--size 224] [--steps 3] [--remat-batch 32]
"""

from __future__ import annotations

import argparse

from benchmarks import common

MODELS = ("keras.applications", "ours", "ours remat")


def one_configuration(model_name, batch, size, steps):
    import keras
    import numpy as np

    import keras_efficientnets as ke

    baseline = common.peak_rss_mib()
    ours = ke.EfficientNetB0(weights=None, input_shape=(size, size, 3), remat=model_name == "ours remat")
    model = common.keras_applications_twin(ours) if model_name == "keras.applications" else ours
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


def run_in_subprocess(model_name, batch, size, steps):
    arguments = ("--one", model_name, "--batch", str(batch), "--size", str(size), "--steps", str(steps))
    for record in common.run_benchmark("bench_train", *arguments, label=model_name, echo=False):
        common.emit(**record)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--remat-batch", type=int, default=32, help="also ours with and without remat at this batch; 0: skip"
    )
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_configuration(args.one, args.batch, args.size, args.steps)
        return
    for model_name in MODELS:
        run_in_subprocess(model_name, args.batch, args.size, args.steps)
    if args.remat_batch:
        for model_name in ("ours", "ours remat"):
            run_in_subprocess(model_name, args.remat_batch, args.size, max(1, args.steps - 1))


if __name__ == "__main__":
    main()
