"""Where `train` runs: one device, a ``tf.distribute`` strategy (MirroredStrategy on one machine,
MultiWorkerMirroredStrategy across several) or JAX with ``keras.distribution.DataParallel``."""

from __future__ import annotations

import contextlib
import json
import os

from keras_efficientnets._common.validation import check_choice

__all__ = ["DISTRIBUTIONS", "check_distribution", "distribution_scope"]


# How `train` spreads the work: None (one device), "mirrored" (every local GPU, or the CPU's
# logical devices), "multiworker" (the hosts of TF_CONFIG), "jax-data-parallel" (every JAX device).
DISTRIBUTIONS = (None, "mirrored", "multiworker", "jax-data-parallel")


def check_distribution(distribute):
    """`distribute`, checked against the backend and the environment before any work starts."""
    import keras

    distribute = check_choice("distribute", distribute, DISTRIBUTIONS)
    backend = keras.backend.backend()
    needed = {"mirrored": "tensorflow", "multiworker": "tensorflow", "jax-data-parallel": "jax"}.get(
        distribute
    )
    if needed is not None and backend != needed:
        raise ValueError(
            f"distribute={distribute!r} needs the {needed} backend (KERAS_BACKEND={needed}). "
            f"Received: distribute={distribute!r} on the {backend!r} backend"
        )
    if distribute == "multiworker" and "TF_CONFIG" not in os.environ:
        raise ValueError(
            "distribute='multiworker' reads the cluster from the TF_CONFIG environment variable, which is "
            "not set: see the README, Training on more than one device / machine."
        )
    return distribute


@contextlib.contextmanager
def distribution_scope(distribute):
    """Yields (replicas, worker index, whether this process saves) inside the engine's scope."""
    import keras

    if distribute is None:
        yield 1, 0, True
        return
    if distribute == "jax-data-parallel":
        previous = keras.distribution.distribution()
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices), 0, _jax_process_index() == 0
        finally:
            keras.distribution.set_distribution(previous)
        return
    import tensorflow as tf

    if distribute == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        worker, is_chief = 0, True
    else:
        strategy = _reducing_nests(tf.distribute.MultiWorkerMirroredStrategy())
        config = json.loads(os.environ["TF_CONFIG"])
        task = config.get("task", {})
        worker = int(task.get("index", 0))
        # TensorFlow's convention: the chief task saves, or worker 0 where the cluster has none.
        has_chief = "chief" in config.get("cluster", {})
        is_chief = task.get("type") == "chief" or (
            task.get("type") == "worker" and worker == 0 and not has_chief
        )
    with strategy.scope():
        yield strategy.num_replicas_in_sync, worker, is_chief


def _reducing_nests(strategy):
    """`strategy` with a `reduce` that Keras 3.15's TensorFlow trainer can use on several workers.

    Two mismatches between that trainer and MultiWorkerMirroredStrategy (the
    mirrored strategy on one machine has neither): ``fit`` first reduces a
    whole ``(images, labels)`` batch, but TensorFlow's reduce takes no nest (a
    TODO in distribute_lib; "Attempt to convert a value (PerReplica ...)");
    then it averages each step's scalar loss and metrics with ``axis=0``,
    which a scalar does not have ("Invalid reduction dimension 0"). This
    reduces each leaf, across replicas only where it has no axis to reduce.
    Every worker runs the same reductions in the same order.
    """
    import tensorflow as tf

    reduce = strategy.reduce

    def rank(value) -> int:
        local = strategy.experimental_local_results(value)[0]
        return len(local.shape)

    def reduce_leaf(reduce_op, leaf, axis):
        return reduce(reduce_op, leaf, axis=axis if axis is None or rank(leaf) > 0 else None)

    def reduce_each(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda leaf: reduce_leaf(reduce_op, leaf, axis), value)

    strategy.reduce = reduce_each
    return strategy


def _jax_process_index() -> int:
    import jax

    return jax.process_index()
