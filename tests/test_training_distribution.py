"""Training past one device with the real engines on this CPU: tf.distribute, keras.distribution, resuming.

TensorFlow fixes its devices when it starts, and JAX reads XLA_FLAGS when it
loads, so every run here is a fresh process: the CPU split into 2 logical
devices for MirroredStrategy, 2 worker processes on 127.0.0.1 for
MultiWorkerMirroredStrategy, 2 virtual CPU devices for JAX's DataParallel.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import keras_efficientnets as ke

TESTS = Path(__file__).resolve().parent


def run_script(script: str, *, env=None, timeout=300) -> dict:
    """Runs `script` in a fresh Python; returns the JSON it prints on its last line."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        cwd=TESTS,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# A small EfficientNet trained from scratch (BatchNorm in training mode, where synchronization
# matters), 3 SGD steps on a global batch of 8, from the same initial weights.
_MIRRORED = """
import json, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, keras_efficientnets as ke
from keras_efficientnets import BlockArgs

STAGES = [BlockArgs(32, 16, 3, 1, 1, 0.25, 1), BlockArgs(16, 24, 3, 2, 2, 0.25, 6)]
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (24, 32, 32, 3)).astype("float32")
y = rng.integers(0, 4, 24)

def build(sync, recipe):
    model = ke.EfficientNet((32, 32, 3), STAGES, 1.0, 1.0, classes=4, sync_batch_norm=sync)
    if recipe:  # the fine-tuning recipe: the backbone's BatchNorm in inference mode
        ke.freeze_batch_norm(model)
    return model

def trained(strategy, sync, recipe, initial):
    with strategy.scope():
        model = build(sync, recipe)
        model.set_weights(initial)
        model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model.get_weights(), int(model.optimizer.iterations.numpy())

single = tf.distribute.OneDeviceStrategy("/cpu:0")
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
report = {"replicas": mirrored.num_replicas_in_sync}
for name, sync, recipe in [("sync", True, False), ("unsync", False, False), ("recipe", False, True)]:
    keras.utils.set_random_seed(1)
    initial = build(sync, recipe).get_weights()
    one, steps_one = trained(single, sync, recipe, initial)
    two, steps_two = trained(mirrored, sync, recipe, initial)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one, initial))
    report[name] = {
        "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
        "moved": moved,
        "steps": [steps_one, steps_two],
    }
print(json.dumps(report))
"""


# Slow (about 35 s: three networks trained twice each in a subprocess); the CLI's mirrored run
# stays in the default suite.
@pytest.mark.slow
def test_mirrored_strategy_trains_as_one_device_does():
    report = run_script(_MIRRORED)
    assert report["replicas"] == 2
    for case in ("sync", "unsync", "recipe"):
        assert report[case]["steps"] == [3, 3]
        assert report[case]["moved"] > 1e-2  # training changed the weights
    # Synchronized BatchNorm normalizes with the global batch's statistics, as one device does:
    # equal up to float32 summation order (two partial sums instead of one).
    assert report["sync"]["max_difference"] < 1e-4
    # The fine-tuning recipe keeps BatchNorm in inference mode: nothing depends on the split.
    assert report["recipe"]["max_difference"] < 1e-4
    # Per-replica statistics (4 images each instead of 8) train other weights: what
    # sync_batch_norm is for.
    assert report["unsync"]["max_difference"] > 100 * max(report["sync"]["max_difference"], 1e-6)


@pytest.mark.backends
def test_freeze_batch_norm_keeps_the_statistics_while_the_rest_trains():
    import keras

    from keras_efficientnets.training import freeze_batch_norm

    stages = [ke.BlockArgs(32, 16, 3, 1, 1, 0.25, 1), ke.BlockArgs(16, 24, 3, 2, 2, 0.25, 6)]
    base = ke.EfficientNet((32, 32, 3), stages, 1.0, 1.0, include_top=False, pooling="avg", remat=True)
    inputs = keras.Input((32, 32, 3))
    # Keras's recipe alone, training=False here, does not hold in Keras 3.15: fit overrides it.
    model = keras.Model(inputs, keras.layers.Dense(2)(base(inputs, training=False)))
    base.trainable = True
    freeze_batch_norm(base)
    before = {w.path: keras.ops.convert_to_numpy(w.value).copy() for w in base.weights}
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (8, 32, 32, 3)), rng.normal(size=(8, 2)), epochs=1, verbose=0)
    changed = {
        w.path
        for w in base.weights
        if not np.array_equal(keras.ops.convert_to_numpy(w.value), before[w.path])
    }
    batch_norm = {w.path for w in base.weights if "_bn/" in w.path}
    assert batch_norm and not changed & batch_norm  # moving statistics, scale and offset as they were
    assert any("conv/kernel" in path for path in changed)  # while the convolutions train


def test_sync_batch_norm_keeps_the_layer_names_and_weight_files(tmp_path):
    plain = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3))
    synced = ke.EfficientNetB0(weights=None, input_shape=(64, 64, 3), sync_batch_norm=True)
    assert [layer.name for layer in synced.layers] == [layer.name for layer in plain.layers]
    assert synced.get_layer("block2a_bn").synchronized and not plain.get_layer("block2a_bn").synchronized
    plain.save_weights(tmp_path / "b0.weights.h5")
    loaded = ke.EfficientNetB0(
        weights=str(tmp_path / "b0.weights.h5"), input_shape=(64, 64, 3), sync_batch_norm=True
    )
    for a, b in zip(loaded.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.backends
def test_sync_batch_norm_on_another_backend_is_refused():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        pytest.skip("the refusal is checked on JAX and PyTorch (make test-backends)")
    with pytest.raises(ValueError, match="sync_batch_norm=True needs the TensorFlow backend") as error:
        ke.EfficientNetB0(weights=None, sync_batch_norm=True)
    assert f"{backend!r} backend" in str(error.value)


# Full-depth B0 (swish: smooth, see the test), the same initial weights and batch of 8: the
# gradient of one step in float64 on one device, and in float32 on one device and over two
# mirrored replicas with synchronized BatchNorm, each compared with float64 per layer group.
_SYNC_GRADIENTS = """
import json, re, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, keras_efficientnets as ke

SIZE, BATCH = 64, 8
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (BATCH, SIZE, SIZE, 3))
y = rng.integers(0, 3, BATCH)

def build(dtype):
    return ke.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=3, dropout_rate=0,
                             drop_connect_rate=0, sync_batch_norm=True, dtype=dtype)

keras.utils.set_random_seed(1)
initial = build("float32").get_weights()

def loss_of(model, images, labels):
    logits = model(images, training=True)
    return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, logits)) / BATCH

def one_device(dtype):
    model = build(dtype)
    model.set_weights([w.astype(dtype) for w in initial])
    with tf.GradientTape() as tape:
        loss = loss_of(model, tf.constant(x, dtype), y)
    gradients = tape.gradient(loss, model.trainable_variables)
    return [v.path for v in model.trainable_variables], [g.numpy().astype("float64") for g in gradients]

def mirrored():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = build("float32")
        model.set_weights(initial)
    data = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y)).batch(BATCH)
    images, labels = next(iter(strategy.experimental_distribute_dataset(data)))

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_of(model, images, labels)
        return tape.gradient(loss, model.trainable_variables)

    per_replica = strategy.run(step, args=(images, labels))
    return [strategy.reduce("SUM", g, axis=None).numpy().astype("float64") for g in per_replica]

def group(path):
    block = re.search(r"block(\\d)", path)
    return f"block{block.group(1)}" if block else path.split("_")[0].split("/")[0]

def distances(gradients, reference, names):
    worst = {}
    for name, g, r in zip(names, gradients, reference):
        error, scale = worst.get(group(name), (0.0, 0.0))
        worst[group(name)] = (max(error, float(np.abs(g - r).max())), max(scale, float(np.abs(r).max())))
    return {key: error / scale for key, (error, scale) in worst.items()}

names, exact = one_device("float64")
print(json.dumps({
    "one_device": distances(one_device("float32")[1], exact, names),
    "mirrored": distances(mirrored(), exact, names),
}))
"""


# Slow (about 30 s: four full-depth builds and a mirrored step in a subprocess).
@pytest.mark.slow
def test_synchronized_gradients_are_as_close_to_float64_as_one_devices():
    # A network with ReLU6 (Lite0) would not do: its float32 gradients are 1e-2 to 1e-1 of the
    # layer's largest away from float64 on either path, because pre-activations within float32
    # round-off of ReLU6's kink at 0 land on the other side; even in float64, perturbing the
    # input by 1e-7 moves the gradients by up to 5%. Swish has no kink, so what remains is the
    # round-off of the two paths, which the ratio compares.
    report = run_script(_SYNC_GRADIENTS)
    one_device, mirrored = report["one_device"], report["mirrored"]
    assert (
        set(one_device)
        == set(mirrored)
        == {
            "stem",
            *(f"block{i}" for i in range(1, 8)),
            "top",
            "predictions",
        }
    )
    for group in one_device:
        # Both float32 paths sit at float32 round-off amplified by 16 blocks (measured about
        # 1e-5 each), neither more than 4x the other's distance.
        assert one_device[group] < 1e-3 and mirrored[group] < 1e-3, (group, one_device, mirrored)
        assert mirrored[group] <= 4 * one_device[group], (group, one_device[group], mirrored[group])
        assert one_device[group] <= 4 * mirrored[group], (group, one_device[group], mirrored[group])


_JAX_DATA_PARALLEL = """
import json, numpy as np, keras, jax, keras_efficientnets as ke
from keras_efficientnets import BlockArgs

STAGES = [BlockArgs(32, 16, 3, 1, 1, 0.25, 1), BlockArgs(16, 24, 3, 2, 2, 0.25, 6)]
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (24, 32, 32, 3)).astype("float32")
y = rng.integers(0, 4, 24)
keras.utils.set_random_seed(1)
initial = ke.EfficientNet((32, 32, 3), STAGES, 1.0, 1.0, classes=4).get_weights()

def trained(distribution):
    keras.distribution.set_distribution(distribution)
    model = ke.EfficientNet((32, 32, 3), STAGES, 1.0, 1.0, classes=4)
    model.set_weights(initial)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    sharding = model.layers[-1].kernel.value.sharding
    return model.get_weights(), sharding

one, _ = trained(None)
devices = keras.distribution.list_devices()
two, sharding = trained(keras.distribution.DataParallel(devices=devices))
print(json.dumps({
    "devices": len(devices),
    "replicated": bool(sharding.is_fully_replicated),
    "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(one, two)),
    "moved": max(float(np.abs(a - b).max()) for a, b in zip(one, initial)),
}))
"""


@pytest.mark.slow
def test_jax_data_parallel_trains_as_one_device_does():
    pytest.importorskip("jax")
    report = run_script(
        _JAX_DATA_PARALLEL,
        env={"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert report["devices"] == 2 and report["replicated"]
    assert report["moved"] > 1e-2
    # The batch is sharded, the program is the global one: BatchNorm's statistics are the
    # global batch's without any option, so only float32 summation order differs.
    assert report["max_difference"] < 1e-4


# ---------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1, killed and resumed.

_WORKER = """
import json, sys, numpy as np
from keras_efficientnets import training
run = training.train(
    sys.argv[1], model="lite0", weights=None, epochs=int(sys.argv[2]), batch_size=4, image_size=32,
    validation_split=0, distribute="multiworker", backup_dir=sys.argv[3], verbose=0,
)
weights = run.model.get_weights()
np.savez(sys.argv[4], *weights)
print(json.dumps({"steps": int(run.model.optimizer.iterations.numpy()), "replicas": run.replicas,
                  "chief": run.is_chief}))
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(folder, tmp_path, epochs, ports, tag):
    workers = []
    for index in range(2):
        config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
        env = {**os.environ, "TF_CONFIG": json.dumps(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        log = open(tmp_path / f"{tag}-{index}.log", "w")  # noqa: SIM115 - closed with the process
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(folder), str(epochs), str(tmp_path / "backup"),
                 str(tmp_path / f"weights-{index}.npz")],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
            )
        )  # fmt: skip
    return workers


def stop(workers):
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(16):
            pixels = np.clip(rng.normal(0, 30, (32, 32, 3)) + colour, 0, 255).astype("uint8")
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


@pytest.mark.slow
def test_multi_worker_training_resumes_after_a_worker_is_killed(image_folder, tmp_path):
    epochs, steps_per_epoch = 6, 32 // 4
    ports = free_ports(2)
    workers = start_workers(image_folder, tmp_path, epochs, ports, "first")
    try:
        # Wait for the first epoch's backup, then kill worker 1 as a preemption would.
        deadline = time.monotonic() + 240
        while not (tmp_path / "backup" / "worker-1" / "training_metadata.json").exists():
            assert time.monotonic() < deadline, (tmp_path / "first-1.log").read_text()[-3000:]
            assert workers[1].poll() is None, (tmp_path / "first-1.log").read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(workers[1].pid, signal.SIGKILL)
        # Worker 0 loses its peer: its collectives fail and it exits, or it is stopped here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            workers[0].wait(timeout=90)
    finally:
        stop(workers)
    assert workers[1].returncode == -signal.SIGKILL
    assert not (tmp_path / "weights-0.npz").exists()  # the first run did not finish
    metadata = json.loads((tmp_path / "backup" / "worker-1" / "training_metadata.json").read_text())
    assert 1 <= metadata["epoch"] < epochs  # epochs completed before the kill

    # The job restarts, on fresh ports: both workers resume from their backups.
    workers = start_workers(image_folder, tmp_path, epochs, free_ports(2), "second")
    try:
        for index, worker in enumerate(workers):
            assert worker.wait(timeout=300) == 0, (tmp_path / f"second-{index}.log").read_text()[-3000:]
    finally:
        stop(workers)
    reports = [
        json.loads((tmp_path / f"second-{i}.log").read_text().strip().splitlines()[-1]) for i in range(2)
    ]
    # The step count of an uninterrupted run: no step lost, none repeated.
    assert [r["steps"] for r in reports] == [epochs * steps_per_epoch] * 2
    assert [r["replicas"] for r in reports] == [2, 2] and [r["chief"] for r in reports] == [True, False]
    first, second = (np.load(tmp_path / f"weights-{i}.npz") for i in range(2))
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])
    assert not (tmp_path / "backup" / "worker-0").exists()  # deleted once the run is complete
