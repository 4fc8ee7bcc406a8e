"""Inference images/s: ours (plain and folded) vs keras.applications, ONNX Runtime and OpenVINO.

Every runtime runs the same weights (random: timing does not depend on their
values) at the variant's native resolution, on random RGB images. Keras models
run through ``predict_on_batch`` (the compiled path), ONNX Runtime and OpenVINO
through their own sessions on our ONNX export (OpenVINO reads the ONNX file, as
``deploy.export(format="openvino")`` converts it), OpenVINO twice: forced to
fp32 like the others, and at its default precision, bf16 on CPUs with bf16 units. Printed:
median images/s over the repeats, and the ratio to keras.applications at the
same batch size. JAX and PyTorch backends run ours at B0, batch 32, each in its
own subprocess (the Keras backend is fixed per process). TensorFlow's oneDNN
kernels: keras.applications' B0 and ours at batch 1 and 32 with
TF_ENABLE_ONEDNN_OPTS=0 and =1, each in its own subprocess (the flag is read
when TensorFlow loads).

Run:

    python -m benchmarks.bench_inference [--variants b0,b3] [--batches 1,32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks import common


def repeats_for(batch: int, repeats: int) -> int:
    # Batch 1 takes milliseconds: more repeats for a stable median at no real cost.
    return repeats * 4 if batch == 1 else repeats


def time_runner(run, images, repeats) -> float:
    seconds = common.median_seconds(lambda: run(images), repeats, warmup=2)
    return len(images) / seconds


def bench_tensorflow(variants, batches, repeats):
    import keras
    import numpy as np

    import keras_efficientnets as ke
    from keras_efficientnets.arch.variants import get_variant
    from keras_efficientnets.deploy.inference import OnnxPredictor, export_onnx, fold_batch_norm

    peak = common.matmul_gflops()
    common.emit(kind="matmul", gflops=peak, onednn=common.onednn_state())
    rng = np.random.default_rng(0)
    for name in variants:
        resolution = get_variant(name).resolution
        gmacs = ke.count_variant_flops(name).gmacs
        ours = getattr(ke, get_variant(name).constructor_name)(weights=None)
        runners = {
            "keras.applications": keras_applications_twin_runner(ours),
            "ours": ours.predict_on_batch,
            "ours folded": fold_batch_norm(ours).predict_on_batch,
        }
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            onnx_path = export_onnx(ours, Path(folder) / f"{name}.onnx")
            common.emit(kind="onnx_export", variant=name, seconds=time.perf_counter() - start)
            runners["ONNX Runtime"] = OnnxPredictor(onnx_path)
            openvino_runner = openvino_runner_for(onnx_path)
            for batch in batches:
                images = rng.uniform(0, 255, (batch, resolution, resolution, 3)).astype("float32")
                if openvino_runner is not None:
                    runners["OpenVINO fp32"] = openvino_runner(batch, resolution, "f32")
                    default = openvino_runner.default_precision
                    runners[f"OpenVINO default ({default})"] = openvino_runner(batch, resolution, None)
                for runtime, run in runners.items():
                    images_per_second = time_runner(run, images, repeats_for(batch, repeats))
                    common.emit(
                        kind="inference",
                        variant=name,
                        batch=batch,
                        runtime=runtime,
                        backend="tensorflow" if runtime.startswith(("ours", "keras")) else "-",
                        images_per_second=images_per_second,
                        gflops=gmacs * 2 * images_per_second,
                        peak_fraction=gmacs * 2 * images_per_second / peak,
                    )
        keras.utils.clear_session()


def keras_applications_twin_runner(ours):
    return common.keras_applications_twin(ours).predict_on_batch


def openvino_runner_for(onnx_path):
    """A factory of compiled OpenVINO models per batch size, or None without openvino."""
    try:
        import openvino
    except ImportError:
        print("openvino is not installed: no OpenVINO rows", flush=True)
        return None
    core = openvino.Core()

    def compiled_for(batch, resolution, precision):
        model = openvino.convert_model(str(onnx_path))
        model.reshape([batch, resolution, resolution, 3])
        config = {} if precision is None else {"INFERENCE_PRECISION_HINT": precision}
        compiled = core.compile_model(model, "CPU", config)
        return lambda images: compiled(images)[0]

    # On CPUs with bf16 units (AMX, AVX512-BF16) OpenVINO computes in bf16 unless told otherwise.
    compiled_for.default_precision = core.get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    return compiled_for


def bench_this_backend(repeats):
    """Ours at B0, batch 1 and 32, on the backend of this process (KERAS_BACKEND); also after
    `optimize_for_backend` where it rewrites the model (JAX on the CPU)."""
    import keras
    import numpy as np

    import keras_efficientnets as ke
    from keras_efficientnets.models.fast_kernels import optimize_for_backend

    model = ke.EfficientNetB0(weights=None)
    models = {"ours": model}
    fast = optimize_for_backend(model)
    if fast is not model:
        models["ours, optimize_for_backend"] = fast
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        images = rng.uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
        for runtime, network in models.items():
            images_per_second = time_runner(network.predict_on_batch, images, repeats_for(batch, repeats))
            common.emit(
                kind="inference",
                variant="b0",
                batch=batch,
                runtime=runtime,
                backend=keras.backend.backend(),
                images_per_second=images_per_second,
                gflops=ke.count_variant_flops("b0").gmacs * 2 * images_per_second,
            )


def bench_onednn_state(repeats):
    """keras.applications' B0 and ours at batch 1 and 32, with oneDNN as this process has it."""
    import numpy as np

    import keras_efficientnets as ke

    ours = ke.EfficientNetB0(weights=None)
    runners = {"keras.applications": keras_applications_twin_runner(ours), "ours": ours.predict_on_batch}
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        images = rng.uniform(0, 255, (batch, 224, 224, 3)).astype("float32")
        for runtime, run in runners.items():
            common.emit(
                kind="onednn",
                onednn=common.onednn_state(),
                variant="b0",
                batch=batch,
                runtime=runtime,
                images_per_second=time_runner(run, images, repeats_for(batch, repeats)),
            )


def bench_onednn(repeats):
    """The pair of rows the oneDNN flag decides: each setting in its own process."""
    for setting in ("0", "1"):
        environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
        records = common.run_benchmark(
            "bench_inference", "--onednn-only", "--repeats", str(repeats), env=environment, echo=False
        )
        for record in records:
            common.emit(**record)


def bench_other_backends(repeats):
    for backend in ("jax", "torch"):
        environment = {**os.environ, "KERAS_BACKEND": backend}
        records = common.run_benchmark(
            "bench_inference", "--this-backend-only", "--repeats", str(repeats), env=environment, echo=False
        )
        for record in records:
            common.emit(**record)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="b0,b3")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at batch 32 (x4 at batch 1)")
    parser.add_argument("--no-backends", action="store_true", help="skip the JAX and PyTorch rows")
    parser.add_argument("--no-onednn-pair", action="store_true", help="skip the oneDNN off/on rows")
    parser.add_argument("--this-backend-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--onednn-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.this_backend_only:
        bench_this_backend(args.repeats)
        return
    if args.onednn_only:
        bench_onednn_state(args.repeats)
        return
    bench_tensorflow(args.variants.split(","), [int(b) for b in args.batches.split(",")], args.repeats)
    if not args.no_onednn_pair:
        bench_onednn(args.repeats)
    if not args.no_backends:
        bench_other_backends(args.repeats)


if __name__ == "__main__":
    main()
