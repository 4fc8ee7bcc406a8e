"""Fine-tuning on a folder of images, on one device or many: `train`, its input pipeline and its model.

The pipeline decodes with `images.load_image` (the decoder `predict` uses too)
inside ``tf.data``, in parallel and prefetched, so it feeds any Keras backend
and any distribution engine. `train` runs the recipe of the Keras
fine-tuning guide (a new classifier on a pretrained backbone whose BatchNorm
stays in inference mode) on one device, on a ``tf.distribute`` strategy
(MirroredStrategy on one machine, MultiWorkerMirroredStrategy across several)
or on JAX with ``keras.distribution.DataParallel``, and resumes a killed run
from its last epoch with ``keras.callbacks.BackupAndRestore``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

import numpy as np

from keras_efficientnets._common import images
from keras_efficientnets._common.validation import check_bool, check_choice, check_int, check_real, received

__all__ = [
    "DISTRIBUTIONS",
    "check_distribution",
    "default_learning_rate",
    "fine_tuning_classifier",
    "freeze_batch_norm",
    "REFERENCE_BATCH",
    "ImageFolder",
    "TrainingRun",
    "image_dataset",
    "image_folder_datasets",
    "scaled_learning_rate",
    "split_image_folder",
    "train",
]

# How `train` spreads the work: None (one device), "mirrored" (every local GPU, or the CPU's
# logical devices), "multiworker" (the hosts of TF_CONFIG), "jax-data-parallel" (every JAX device).
DISTRIBUTIONS = (None, "mirrored", "multiworker", "jax-data-parallel")
# The global batch the default learning rates are for; other batches scale them linearly.
REFERENCE_BATCH = 32


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """A folder of class subfolders, split into training and validation images."""

    class_names: list[str]
    train_paths: list[str]
    train_labels: list[int]
    validation_paths: list[str]
    validation_labels: list[int]

    def describe(self) -> str:
        total = len(self.train_paths) + len(self.validation_paths)
        return (
            f"Found {total} images in {len(self.class_names)} classes: {len(self.train_paths)} for "
            f"training, {len(self.validation_paths)} for validation."
        )


def split_image_folder(root, validation_split: float = 0.2, seed: int = 0) -> ImageFolder:
    """Lists a folder's images (`images.image_folder`) and splits them at random, reproducibly.

    Args:
        root: A folder with one subfolder of images per class.
        validation_split: The share held out for validation, in [0, 1).
        seed: Seed of the split.
    """
    validation_split = check_real("validation_split", validation_split, minimum=0, maximum=1, max_open=True)
    seed = check_int("seed", seed)
    paths, labels, class_names = images.image_folder(root)
    order = np.random.default_rng(seed).permutation(len(paths))
    held_out = int(round(len(paths) * validation_split))
    train, validation = order[held_out:], order[:held_out]
    return ImageFolder(
        class_names=class_names,
        train_paths=[paths[i] for i in train],
        train_labels=[labels[i] for i in train],
        validation_paths=[paths[i] for i in validation],
        validation_labels=[labels[i] for i in validation],
    )


def image_dataset(paths, labels, image_size: int, batch_size: int, *, shuffle_seed: int | None = None):
    """Batches of (images, labels): RGB [0, 255] images cropped to their centre square and resized.

    Args:
        paths, labels: Image files and their class indices.
        image_size: Side of the square images.
        batch_size: Images per batch.
        shuffle_seed: Shuffle every epoch with this seed; None keeps the order.
    """
    import tensorflow as tf

    def decode(path):
        return images.load_image(path.decode("utf-8"), size=image_size)

    def load(path, label):
        image = tf.numpy_function(decode, [path], tf.float32, stateful=False)
        image.set_shape((image_size, image_size, 3))
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, dtype="int32")))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    # Each worker of a multi-worker run takes its own share of the batches' images.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def image_folder_datasets(folder: ImageFolder, image_size: int, batch_size: int, seed: int = 0):
    """Training (shuffled each epoch) and validation (None without validation images) datasets."""
    train = image_dataset(folder.train_paths, folder.train_labels, image_size, batch_size, shuffle_seed=seed)
    validation = (
        image_dataset(folder.validation_paths, folder.validation_labels, image_size, batch_size)
        if folder.validation_paths
        else None
    )
    return train, validation


def default_learning_rate(freeze_backbone: bool) -> float:
    """Adam's rate for `REFERENCE_BATCH` images: a new classifier alone trains faster than everything."""
    return 1e-3 if freeze_backbone else 1e-4


def scaled_learning_rate(learning_rate: float, global_batch: int) -> float:
    """The linear scaling rule: `learning_rate` is for `REFERENCE_BATCH` images a step.

    Example:
        >>> scaled_learning_rate(1e-4, 128)
        0.0004
    """
    return learning_rate * global_batch / REFERENCE_BATCH


@dataclasses.dataclass
class TrainingRun:
    """What `train` made: the model, its history and what a saved copy needs."""

    model: object
    history: dict
    class_names: list[str]
    image_size: int
    learning_rate: float
    replicas: int
    is_chief: bool


def train(
    data_dir,
    *,
    model: str = "b0",
    weights="imagenet",
    epochs: int = 5,
    batch_size: int = REFERENCE_BATCH,
    image_size: int | None = None,
    validation_split: float = 0.2,
    freeze_backbone: bool = False,
    learning_rate: float | None = None,
    distribute: str | None = None,
    sync_batch_norm: bool = False,
    backup_dir=None,
    seed: int = 0,
    verbose=1,
) -> TrainingRun:
    """Fine-tunes a named EfficientNet on a folder of class subfolders, on one device or many.

    Args:
        data_dir: A folder with one subfolder of images per class, or an
            `ImageFolder` already split (`split_image_folder`).
        model: Variant name, e.g. "b0" or "lite0".
        weights: "imagenet", None (random) or a weights file for `model`.
        epochs: Passes over the training images.
        batch_size: The global batch: images per step over all replicas
            together (each of R replicas gets batch_size / R).
        image_size: Input side in pixels; None for the variant's.
        validation_split: Share of the images held out for validation (when
            `data_dir` is a folder).
        freeze_backbone: Train only the new classifier.
        learning_rate: Adam's learning rate for a batch of `REFERENCE_BATCH`
            images (default 1e-3 with a frozen backbone, 1e-4 otherwise),
            scaled linearly to `batch_size` (`scaled_learning_rate`).
        distribute: None (one device), "mirrored" (``tf.distribute.
            MirroredStrategy``: every GPU of this machine, or its CPU's logical
            devices), "multiworker" (``MultiWorkerMirroredStrategy`` over the
            hosts of the ``TF_CONFIG`` variable; start the same call on each)
            or "jax-data-parallel" (``keras.distribution.DataParallel`` over
            every JAX device; multi-process after ``keras.distribution.initialize()``).
        sync_batch_norm: Build the backbone with synchronized BatchNorm
            (TensorFlow). The recipe keeps the backbone's BatchNorm in
            inference mode, so this matters only for layers that train their
            statistics; see `EfficientNet`.
        backup_dir: Folder for ``keras.callbacks.BackupAndRestore``: a run
            killed midway and started again with the same arguments resumes
            after its last complete epoch (each worker of a multi-worker run
            keeps its own backup in ``worker-<index>``). Deleted at the end.
        seed: Seed of the split, the shuffling and the initialisation.
        verbose: Keras `fit` verbosity (0, 1 progress bars, 2 a line per epoch).

    Returns:
        A `TrainingRun` (save the model where ``is_chief``).
    """
    import keras

    from keras_efficientnets.arch.variants import get_variant

    distribute = check_distribution(distribute)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    freeze_backbone = check_bool("freeze_backbone", freeze_backbone)
    variant = get_variant(model)
    size = variant.resolution if image_size is None else check_int("image_size", image_size, minimum=32)
    if learning_rate is None:
        learning_rate = default_learning_rate(freeze_backbone)
    learning_rate = scaled_learning_rate(
        check_real("learning_rate", learning_rate, minimum=0, min_open=True), batch_size
    )
    folder = (
        data_dir
        if isinstance(data_dir, ImageFolder)
        else split_image_folder(data_dir, validation_split, seed=seed)
    )
    keras.utils.set_random_seed(seed)
    with _distribution(distribute) as (replicas, worker, is_chief):
        if batch_size % replicas:
            raise ValueError(
                f"`batch_size` must be a multiple of the {replicas} replicas, each taking an equal share. "
                f"{received('batch_size', batch_size)}"
            )
        train_data, validation_data = image_folder_datasets(folder, size, batch_size, seed=seed)
        train_data = train_data.map(_augmentation())
        classifier = fine_tuning_classifier(
            variant.name, weights, size, len(folder.class_names), freeze_backbone, sync_batch_norm
        )
        classifier.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = []
        if backup_dir is not None:
            backup = (
                os.path.join(os.fspath(backup_dir), f"worker-{worker}")
                if distribute == "multiworker"
                else backup_dir
            )
            callbacks.append(keras.callbacks.BackupAndRestore(os.fspath(backup)))
        history = classifier.fit(
            train_data, validation_data=validation_data, epochs=epochs, callbacks=callbacks, verbose=verbose
        )
    return TrainingRun(
        model=classifier,
        history=history.history,
        class_names=folder.class_names,
        image_size=size,
        learning_rate=learning_rate,
        replicas=replicas,
        is_chief=is_chief,
    )


def freeze_batch_norm(model):
    """Keeps every BatchNormalization layer of `model` on its current (ImageNet) statistics.

    The Keras fine-tuning guide calls the backbone with ``training=False``
    for this, but Keras 3 (3.15 measured) lets ``fit``'s ``training=True``
    override that argument in a functional model, so the moving statistics
    drift to the new data's small batches once the backbone is unfrozen. A
    BatchNormalization layer that is not trainable always runs in inference
    mode: freezing them (their scale and offset too) is what holds. Call it
    after ``model.trainable = True``, which unfreezes them again.

    Returns:
        `model`, for chaining.
    """
    import keras

    from keras_efficientnets.models.remat import leaf_layers

    for layer in leaf_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return model


def fine_tuning_classifier(variant, weights, size, classes, freeze_backbone=False, sync_batch_norm=False):
    """The named variant without its ImageNet classifier, and a new one for `classes` on top.

    The backbone's BatchNorm keeps its statistics (`freeze_batch_norm`); its
    other layers train unless `freeze_backbone`.
    """
    import keras

    from keras_efficientnets.arch.variants import get_variant
    from keras_efficientnets.models import builder as model_lib

    variant = get_variant(variant)
    base = getattr(model_lib, variant.constructor_name)(
        weights=weights,
        include_top=False,
        pooling="avg",
        input_shape=(size, size, 3),
        sync_batch_norm=sync_batch_norm,
    )
    base.trainable = not freeze_backbone
    # BatchNorm stays in inference mode, as the Keras fine-tuning guide advises: small
    # batches of a new dataset would otherwise overwrite the pretrained statistics.
    freeze_batch_norm(base)
    inputs = keras.Input((size, size, 3), name="image")
    x = base(inputs, training=False)
    x = keras.layers.Dropout(variant.dropout_rate, name="top_dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"{base.name}_finetuned")


def _augmentation():
    """Flips, small rotations and zooms, applied in the input pipeline (the saved model holds none)."""
    import keras

    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomRotation(0.05),
            keras.layers.RandomZoom(0.1),
        ],
        name="augmentation",
    )
    return lambda x, y: (augment(x, training=True), y)


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
def _distribution(distribute):
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
