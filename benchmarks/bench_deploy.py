"""Deployment: every format x precision of the real Lite0-2 against the float model and keras.applications.

For each of EfficientNet-Lite0, 1 and 2 (the ImageNet weights that install
offline) it exports LiteRT, ONNX and OpenVINO files in float32, float16 and
int8 (calibrated on 200 views of scikit-image's photos) and a SavedModel, and
measures on 500 other views (`photo_crops`, a different seed): top-1 agreement
with the float Keras model, top-5 overlap, mean KL divergence of the class
probabilities, file size, latency at batch 1 and images/s at batch 32. The
float Keras model and keras.applications' EfficientNetB0 (fp32, TensorFlow,
the peer) run in the same process.

Then B0's int8 recovery options (`keep_float`): measured only if B0's ImageNet
weights can be fetched, since random weights say nothing about quantization
accuracy; the benchmark says when they cannot.

    python -m benchmarks.bench_deploy [--models lite0,lite1,lite2] [--held-out 500]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import common
from benchmarks.photo_crops import CALIBRATION_SEED, HELD_OUT_SEED, photo_crops
from keras_efficientnets.deploy.formats import FORMATS, FORMATS_OF_QUANTIZATION, QUANTIZATIONS

# Every precision each format exports: None (float32), "float16", "int8".
PRECISIONS = {
    format: tuple(q for q in QUANTIZATIONS if format in FORMATS_OF_QUANTIZATION[q]) for format in FORMATS
}


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def agreement(reference_logits, logits) -> dict:
    """Top-1 agreement, top-5 overlap and mean KL(float || other) of two sets of logits."""
    p, q = softmax(reference_logits.astype("float64")), softmax(logits.astype("float64"))
    top5 = lambda x: np.argsort(x, axis=-1)[:, -5:]  # noqa: E731
    overlap = np.mean(
        [len(set(a) & set(b)) / 5 for a, b in zip(top5(reference_logits), top5(logits), strict=True)]
    )
    confident = p.max(-1) >= 0.5
    agree = reference_logits.argmax(-1) == logits.argmax(-1)
    return {
        "top1_agreement": float(agree.mean()),
        "top1_agreement_confident": float(agree[confident].mean()),
        "confident": int(confident.sum()),
        "top5_overlap": float(overlap),
        "mean_kl": float(np.mean(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)), axis=-1))),
        "max_abs_logit_difference": float(np.abs(reference_logits - logits).max()),
    }


def size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
    extra = path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0
    return (path.stat().st_size + extra) / 1e6


def timing(run, images, repeats) -> tuple[float, float]:
    """Median latency at batch 1 (ms) and throughput at batch 32 (images/s)."""
    one, batch = images[:1], images[:32]
    latency = common.median_seconds(lambda: run(one), repeats * 10, warmup=3)
    per_batch = common.median_seconds(lambda: run(batch), repeats, warmup=1)
    return latency * 1000, len(batch) / per_batch


def keras_runner(model):
    import tensorflow as tf

    serve = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: serve(tf.constant(x)).numpy()


def bench_model(name, calibration, held_out, folder: Path, repeats: int):
    import keras_efficientnets as ke
    from keras_efficientnets.deploy.exporter import export
    from keras_efficientnets.deploy.predictors import load_predictor

    model = getattr(ke, ke.config.get_variant(name).constructor_name)(
        weights="imagenet", classifier_activation=None
    )
    size = model.input_shape[1]
    calibration, held_out = calibration(size), held_out(size)
    reference = model.predict(held_out, batch_size=32, verbose=0)
    latency, throughput = timing(keras_runner(model), held_out, repeats)
    common.emit(
        kind="deploy",
        model=name,
        runtime="keras",
        precision="float32",
        size_mb=4 * model.count_params() / 1e6,
        latency_ms=latency,
        images_per_second=throughput,
        export_seconds=0.0,
        **agreement(reference, reference),
    )
    for format, suffix in FORMATS.items():
        for precision in PRECISIONS[format]:
            path = folder / f"{name}_{precision or 'float32'}{suffix or '_saved_model'}"
            start = time.perf_counter()
            export(
                model,
                path,
                quantize=precision,
                calibration=calibration if precision == "int8" else None,
                verbose=False,
            )
            seconds = time.perf_counter() - start
            predictor = load_predictor(path)
            logits = predictor.predict(held_out, batch_size=32)
            latency, throughput = timing(predictor, held_out, repeats)
            common.emit(
                kind="deploy",
                model=name,
                runtime=format,
                precision=precision or "float32",
                size_mb=size_mb(path),
                latency_ms=latency,
                images_per_second=throughput,
                export_seconds=seconds,
                **agreement(reference, logits),
            )


def bench_peer(held_out, repeats):
    """keras.applications' EfficientNetB0, fp32 on TensorFlow: the speed every row is compared with."""
    import keras

    peer = keras.applications.EfficientNetB0(weights=None)
    latency, throughput = timing(keras_runner(peer), held_out(224), repeats)
    common.emit(
        kind="deploy_peer",
        model="keras.applications EfficientNetB0",
        runtime="keras",
        precision="float32",
        latency_ms=latency,
        images_per_second=throughput,
    )


def bench_b0_recovery(calibration, held_out, folder: Path):
    """B0's int8 with and without float squeeze-excite, stem and head; needs B0's ImageNet weights."""
    import keras_efficientnets as ke
    from keras_efficientnets.deploy.exporter import export
    from keras_efficientnets.deploy.predictors import load_predictor

    try:
        model = ke.EfficientNetB0(weights="imagenet", classifier_activation=None)
    except Exception as error:  # offline: the download fails, and the benchmark says so
        common.emit(
            kind="b0_recovery", skipped=f"B0's ImageNet weights could not be fetched ({type(error).__name__})"
        )
        return
    calibration, held_out = calibration(224), held_out(224)
    reference = model.predict(held_out, batch_size=32, verbose=0)
    for format in ("litert", "onnx", "openvino"):
        for keep_float in ((), ("se",), ("se", "stem", "head")):
            path = folder / f"b0_int8_{'_'.join(keep_float) or 'all'}{FORMATS[format]}"
            export(
                model, path, quantize="int8", calibration=calibration, keep_float=keep_float, verbose=False
            )
            logits = load_predictor(path).predict(held_out, batch_size=32)
            common.emit(
                kind="b0_recovery",
                runtime=format,
                keep_float=list(keep_float),
                **agreement(reference, logits),
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="lite0,lite1,lite2")
    parser.add_argument("--held-out", type=int, default=500)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import tensorflow as tf  # noqa: F401 - loads TensorFlow before the oneDNN state is read

    common.emit(
        kind="deploy_machine",
        cpu=common.cpu_model(),
        flags=common.cpu_flags(),
        onednn=common.onednn_state(),
        cores=os.cpu_count(),
        held_out=args.held_out,
        calibration=args.calibration,
    )
    print(f"CPU: {common.cpu_model()}; flags: {', '.join(common.cpu_flags())}", flush=True)

    def calibration(size):
        return photo_crops(args.calibration, size, CALIBRATION_SEED)

    def held_out(size):
        return photo_crops(args.held_out, size, HELD_OUT_SEED)

    bench_peer(held_out, args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            bench_model(name, calibration, held_out, Path(folder), args.repeats)
        bench_b0_recovery(calibration, held_out, Path(folder))


if __name__ == "__main__":
    main()
