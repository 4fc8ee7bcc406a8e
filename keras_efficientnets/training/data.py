"""The input pipeline: a folder of class subfolders, split reproducibly, read into ``tf.data``.

The pipeline decodes with `images.load_image` (the decoder `predict` uses too) inside
``tf.data``, in parallel and prefetched, so it feeds any Keras backend and any distribution engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_efficientnets._common import images
from keras_efficientnets._common.validation import check_int, check_real, is_int, received

__all__ = [
    "ImageFolder",
    "check_image_folder",
    "image_dataset",
    "image_folder_datasets",
    "split_image_folder",
]


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """A folder of class subfolders, split into training and validation images."""

    class_names: list[str]
    train_paths: list[str]
    train_labels: list[int]
    validation_paths: list[str]
    validation_labels: list[int]
    # Hidden subfolders (.git, .ipynb_checkpoints) that are not classes.
    skipped_folders: tuple[str, ...] = ()

    def describe(self) -> str:
        total = len(self.train_paths) + len(self.validation_paths)
        skipped = (
            f" Skipped hidden folders: {', '.join(self.skipped_folders)}." if self.skipped_folders else ""
        )
        return (
            f"Found {total} images in {len(self.class_names)} classes: {len(self.train_paths)} for "
            f"training, {len(self.validation_paths)} for validation.{skipped}"
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
        skipped_folders=tuple(images.hidden_folders(root)),
    )


def check_image_folder(folder: ImageFolder, progress=None) -> None:
    """Checks a training set before anything is built: names and labels that agree, a non-empty
    training split, and every image decodable (a bad file fails now, by name, not an epoch in).

    Args:
        folder: The split to train on.
        progress: Called with the number of images decoded so far.

    Raises:
        TypeError: `folder` is no `ImageFolder`.
        ValueError: Lengths that differ, labels outside the classes, no training images, or an
            image that cannot be read (`images.ImageError`, naming the file).
    """
    if not isinstance(folder, ImageFolder):
        raise TypeError(f"`data_dir` must be a folder or an ImageFolder. {received('data_dir', folder)}")
    names = folder.class_names
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"An ImageFolder needs at least 2 class names. Received: class_names={names!r}")
    for split in ("train", "validation"):
        paths, labels = getattr(folder, f"{split}_paths"), getattr(folder, f"{split}_labels")
        if len(paths) != len(labels):
            raise ValueError(
                f"The ImageFolder has {len(paths)} {split} images but {len(labels)} {split} labels."
            )
        wrong = [label for label in labels if not is_int(label) or not 0 <= label < len(names)]
        if wrong:
            raise ValueError(
                f"{split}_labels must be class indices in [0, {len(names)}). Received: {wrong[:5]!r}"
            )
    if not folder.train_paths:
        raise ValueError(
            f"No images are left for training ({len(folder.validation_paths)} held out for validation): "
            "lower `validation_split` or add images."
        )
    images.check_images(folder.train_paths + folder.validation_paths, progress)


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
