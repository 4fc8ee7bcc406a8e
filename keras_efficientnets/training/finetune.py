"""Fine-tuning: `train`, the recipe of the Keras fine-tuning guide (a new classifier on a
pretrained backbone whose BatchNorm stays in inference mode), its model and learning rates; a
killed run resumes from its last epoch with ``keras.callbacks.BackupAndRestore``."""

from __future__ import annotations

import dataclasses
import os

from keras_efficientnets._common.images import MAX_IMAGE_SIZE
from keras_efficientnets._common.validation import check_bool, check_int, check_real, received
from keras_efficientnets.arch import layer_names
from keras_efficientnets.training.backup import check_backup
from keras_efficientnets.training.data import (
    ImageFolder,
    check_image_folder,
    image_folder_datasets,
    split_image_folder,
)
from keras_efficientnets.training.distribution import check_distribution, distribution_scope

__all__ = [
    "REFERENCE_BATCH",
    "TrainingRun",
    "default_learning_rate",
    "fine_tuning_classifier",
    "freeze_batch_norm",
    "scaled_learning_rate",
    "train",
]


# The global batch the default learning rates are for; other batches scale them linearly.
REFERENCE_BATCH = 32


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
        image_size: Input side in pixels; None for the variant's (a timm checkpoint's own
            size with Hub weights: its config.json).
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
            keeps its own backup in ``worker-<index>``). Deleted at the end. A
            backup of other arguments, or a damaged one, is refused
            (`backup.check_backup`).
        seed: Seed of the split, the shuffling and the initialisation.
        verbose: Keras `fit` verbosity (0, 1 progress bars, 2 a line per epoch).

    Returns:
        A `TrainingRun` (save the model where ``is_chief``).
    """
    import keras

    from keras_efficientnets.arch.variants import get_variant
    from keras_efficientnets.weights.hub import input_size_for

    distribute = check_distribution(distribute)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    freeze_backbone = check_bool("freeze_backbone", freeze_backbone)
    variant = get_variant(model)
    size = (
        input_size_for(weights, variant.name)
        if image_size is None
        else check_int("image_size", image_size, minimum=32, maximum=MAX_IMAGE_SIZE)
    )
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
    check_image_folder(
        folder, _checking_progress(len(folder.train_paths) + len(folder.validation_paths), verbose)
    )
    keras.utils.set_random_seed(seed)
    with distribution_scope(distribute) as (replicas, worker, is_chief):
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
            run_options = {
                "model": variant.name,
                "weights": weights if weights in (None, "imagenet") else os.fspath(weights),
                "image_size": size,
                "class_names": list(folder.class_names),
                "validation_split": validation_split,
                "freeze_backbone": freeze_backbone,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "sync_batch_norm": sync_batch_norm,
                "seed": seed,
            }
            check_backup(backup, run_options)
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

    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. {received('model', model)}")
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
    x = keras.layers.Dropout(variant.dropout_rate, name=layer_names.CLASSIFIER_DROPOUT)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name=layer_names.CLASSIFIER)(x)
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


def _checking_progress(count: int, verbose):
    """With `verbose`, a progress bar over the `count` images `check_image_folder` decodes."""
    if not verbose or not count:
        return None
    import keras

    print(f"Checking that the {count} images decode")
    return keras.utils.Progbar(count).update
