"""Every Keras backend beside its natural peer, in one run: B0 inference at 224 px, batch 1 and 32.

- TensorFlow: ours against keras.applications' EfficientNetB0 holding the same weights.
- JAX: ours, plain and after `optimize_for_backend`, against ours on TensorFlow (same CPU, same run).
- PyTorch: ours against timm's ``tf_efficientnet_b0`` (the same network: TF "same" padding,
  BatchNorm epsilon 1e-3) run eagerly under ``torch.inference_mode``, as PyTorch users run it. Ours
  twice: through ``predict_on_batch`` (NumPy in and out, as Keras users call it) and called on a
  torch tensor under ``torch.no_grad`` (what timm's row does).

Each backend runs in its own subprocess (Keras fixes its backend per process), one after another,
so no two compete for the cores. Printed: median images/s, the ratio to the peer, and the CPU.
timm imports torchvision, whose PyPI wheels do not import beside the CPU torch wheel; it is
imported as the tests import it (tests/timm_reference.py: stand-ins for torchvision's modules,
which timm's EfficientNet code never calls).

Run:

    python -m benchmarks.bench_backends [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import common
from benchmarks.bench_inference import repeats_for, time_runner

BATCHES = (1, 32)
SIZE = 224
BACKENDS = ("tensorflow", "jax", "torch")
# The peer each backend's rows are divided by: (backend, runtime) of the peer row.
PEERS = {
    "tensorflow": ("tensorflow", "keras.applications"),
    "jax": ("tensorflow", "ours"),
    "torch": ("torch", "timm tf_efficientnet_b0, eager"),
}


def random_images(batch):
    import numpy as np

    return np.random.default_rng(batch).uniform(0, 255, (batch, SIZE, SIZE, 3)).astype("float32")


def emit_row(runtime, batch, run, images, repeats):
    import keras

    common.emit(
        kind="backend",
        backend=keras.backend.backend(),
        runtime=runtime,
        batch=batch,
        images_per_second=time_runner(run, images, repeats_for(batch, repeats)),
    )


def bench_tensorflow(repeats):
    import keras_efficientnets as ke

    ours = ke.EfficientNetB0(weights=None)
    peer = common.keras_applications_twin(ours)
    for batch in BATCHES:
        images = random_images(batch)
        emit_row("ours", batch, ours.predict_on_batch, images, repeats)
        emit_row("keras.applications", batch, peer.predict_on_batch, images, repeats)


def bench_jax(repeats):
    import keras_efficientnets as ke
    from keras_efficientnets.models.fast_kernels import optimize_for_backend

    ours = ke.EfficientNetB0(weights=None)
    fast = optimize_for_backend(ours)
    for batch in BATCHES:
        images = random_images(batch)
        emit_row("ours", batch, ours.predict_on_batch, images, repeats)
        emit_row("ours, optimize_for_backend", batch, fast.predict_on_batch, images, repeats)


def bench_torch(repeats):
    import torch

    import keras_efficientnets as ke

    sys.path.insert(0, str(common.ROOT / "tests"))
    from timm_reference import import_timm

    ours = ke.EfficientNetB0(weights=None)
    timm_b0 = import_timm().create_model("tf_efficientnet_b0", pretrained=False).eval()

    def ours_no_grad(images):
        with torch.no_grad():
            return ours(images, training=False)

    def timm_inference(images):
        with torch.inference_mode():
            return timm_b0(images)

    for batch in BATCHES:
        images = random_images(batch)
        emit_row("ours, predict_on_batch", batch, ours.predict_on_batch, images, repeats)
        emit_row("ours, no_grad call", batch, ours_no_grad, torch.from_numpy(images), repeats)
        channels_first = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        emit_row(PEERS["torch"][1], batch, timm_inference, channels_first, repeats)


def run_backends(repeats):
    """Each backend in its own process, one after another; their records, re-emitted."""
    records = []
    for backend in BACKENDS:
        environment = {**os.environ, "KERAS_BACKEND": backend}
        records += common.run_benchmark(
            "bench_backends", "--backend", backend, "--repeats", str(repeats), env=environment, echo=False
        )
    for record in records:
        common.emit(**record)
    return records


def backends_table(records):
    """Markdown rows: images/s per backend and runtime, and the ratio to that backend's peer."""
    rows = [r for r in records if r["kind"] == "backend"]
    speed = {(r["backend"], r["runtime"], r["batch"]): r["images_per_second"] for r in rows}
    lines = [
        "| backend | runtime | batch | images/s | peer | vs peer |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer_backend, peer_runtime = PEERS[r["backend"]]
        peer = speed.get((peer_backend, peer_runtime, r["batch"]))
        is_peer = (r["backend"], r["runtime"]) == (peer_backend, peer_runtime)
        ratio = "-" if is_peer or peer is None else f"{r['images_per_second'] / peer:.2f}x"
        lines.append(
            f"| {r['backend']} | {r['runtime']} | {r['batch']} | {r['images_per_second']:.1f} | "
            f"{'-' if is_peer else f'{peer_runtime} ({peer_backend})'} | {ratio} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at batch 32 (x4 at batch 1)")
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend:
        {"tensorflow": bench_tensorflow, "jax": bench_jax, "torch": bench_torch}[args.backend](args.repeats)
        return
    print(f"CPU: {common.cpu_model()}, {os.cpu_count()} cores", flush=True)
    records = run_backends(args.repeats)
    print("\n".join(backends_table(records)))


if __name__ == "__main__":
    main()
