"""Training steps/s on 1 and 2 MirroredStrategy replicas, and what that can show on a CPU.

Each configuration runs in its own process: TensorFlow fixes its devices when
it starts. The 2 replicas are logical devices carved from the same CPU
(``tf.config.set_logical_device_configuration``), so they share its cores and
its memory bandwidth: this measures what replication costs (two copies of the
step, the gradient all-reduce, the per-replica batches being half as large),
not a speed-up, which needs devices that add compute (GPUs, or hosts for
MultiWorkerMirroredStrategy). On a 2-core machine expect 2 replicas to be no
faster than 1, and slower by the overhead.

    python -m benchmarks.bench_distributed [--batch 16] [--size 224] [--steps 5] [--repeats 3]
"""

from __future__ import annotations

import argparse

from benchmarks import common


def one_configuration(replicas, batch, size, steps, repeats):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    import keras
    import numpy as np

    import keras_efficientnets as ke

    devices = [f"/cpu:{index}" for index in range(replicas)]
    # MirroredStrategy for 1 replica too, so that the rows differ only in the replica count.
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = ke.EfficientNetB0(weights=None, input_shape=(size, size, 3))
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch * (steps + 1), size, size, 3)).astype("float32")
    labels = rng.integers(0, 1000, (len(images),))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
    model.fit(dataset.take(1), verbose=0)  # traces the step

    def epoch():
        model.fit(dataset.skip(1), verbose=0)

    # The median of several epochs: a single one on a shared machine can be several times too slow.
    seconds = common.median_seconds(epoch, repeats, warmup=0) / steps
    common.emit(kind="distributed", replicas=replicas, batch=batch, size=size, steps_per_second=1 / seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="global batch")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_configuration(args.one, args.batch, args.size, args.steps, args.repeats)
        return
    for replicas in (1, 2):
        arguments = ("--one", str(replicas), "--batch", str(args.batch), "--size", str(args.size))
        for record in common.run_benchmark(
            "bench_distributed",
            *arguments,
            "--steps",
            str(args.steps),
            "--repeats",
            str(args.repeats),
            echo=False,
        ):
            common.emit(**record)


if __name__ == "__main__":
    main()
