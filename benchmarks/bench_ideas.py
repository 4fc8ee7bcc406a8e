"""Cheap ideas for B0 inference, each against its own baseline in the same run.

- XLA: the folded model compiled with ``jit_compile=True`` vs the default TF graph.
- ONNX: exporting the folded model instead of the plain one, in ONNX Runtime.

Printed: images/s at batch 32, 224 px, and the ratio to the baseline. What did not help is
recorded in benchmarks/README.md.

Run:

    python -m benchmarks.bench_ideas [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import common


def images_per_second(run, images, repeats):
    return len(images) / common.median_seconds(lambda: run(images), repeats, warmup=2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    import keras_efficientnets as ke
    from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx, fold_batch_norm

    images = np.random.default_rng(0).uniform(0, 255, (32, 224, 224, 3)).astype("float32")
    model = ke.EfficientNetB0(weights=None)
    folded = fold_batch_norm(model)

    baseline = images_per_second(folded.predict_on_batch, images, args.repeats)
    folded.compile(jit_compile=True)
    xla = images_per_second(folded.predict_on_batch, images, args.repeats)
    common.emit(kind="idea", idea="XLA, folded", baseline=baseline, tried=xla, ratio=xla / baseline)

    with tempfile.TemporaryDirectory() as folder:
        plain_runner = OnnxPredictor(export_onnx(model, Path(folder) / "plain.onnx"))
        folded_runner = OnnxPredictor(export_onnx(fold_batch_norm(model), Path(folder) / "folded.onnx"))
        plain = images_per_second(plain_runner, images, args.repeats)
        folded_onnx = images_per_second(folded_runner, images, args.repeats)
        difference = np.abs(plain_runner(images[:4]) - folded_runner(images[:4])).max()
    common.emit(
        kind="idea",
        idea="ONNX export of the folded model",
        baseline=plain,
        tried=folded_onnx,
        ratio=folded_onnx / plain,
        max_abs_difference=float(difference),
    )


if __name__ == "__main__":
    main()
