"""Calibration images for int8 quantization, from a folder, an array or an iterable of batches.

Post-training quantization measures the range of every activation on a few
hundred representative images. `calibration_images` turns what the user has
into one float32 array of images shaped like the model's input, checked, with
a progress bar while a folder is decoded. Keras-free.
"""

from __future__ import annotations

import os

import numpy as np

from keras_efficientnets._common import images as images_lib
from keras_efficientnets._common.validation import batch_shape_text, check_int, fits_batch_shape, received

__all__ = ["DEFAULT_CALIBRATION_IMAGES", "calibration_images"]

# Enough for stable ranges: 100 to 300 crops moved Lite0's int8 agreement by about one
# image in 64 (BENCHMARKS.md), and more only costs time.
DEFAULT_CALIBRATION_IMAGES = 200


def calibration_images(calibration, input_shape, limit: int = DEFAULT_CALIBRATION_IMAGES, progress=None):
    """The calibration set as an (N, H, W, C) float32 array of images in the model's input range.

    Args:
        calibration: A folder of image files (searched recursively; JPEG, PNG,
            ...), each centre-cropped and resized to the model's input size; an
            array of images shaped like the model's input (a batch, or one
            image); or an iterable of such batches, such as a ``tf.data``
            dataset (``(images, labels)`` pairs are taken for their images).
        input_shape: The model's input shape without the batch axis; None for
            a size the model leaves open (then only arrays and batches serve).
        limit: At most this many images are used (the first ones).
        progress: Called with (images done, images in all) while a folder decodes.

    Raises:
        ValueError: No images, or images of another shape than the model takes.
        FileNotFoundError: A path that is not a folder.

    Example:
        >>> calibration_images(np.zeros((8, 64, 64, 3)), (64, 64, 3)).shape
        (8, 64, 64, 3)
    """
    limit = check_int("calibration_limit", limit, minimum=1)
    input_shape = tuple(input_shape)
    if isinstance(calibration, (str, os.PathLike)):
        found = _folder_images(calibration, input_shape, limit, progress)
    elif isinstance(calibration, np.ndarray) or _is_tensor(calibration):
        found = _as_batch(np.asarray(calibration), input_shape)[:limit]
    elif hasattr(calibration, "__iter__") and not isinstance(calibration, (bytes, dict)):
        found = _iterable_images(calibration, input_shape, limit)
    else:
        raise TypeError(
            "`calibration` must be a folder of images, an array of images, or an iterable of image batches "
            f"(e.g. a tf.data.Dataset). {received('calibration', calibration)}"
        )
    if not np.all(np.isfinite(found)):
        raise ValueError("`calibration` holds NaN or infinite pixel values: pass images, RGB in [0, 255].")
    return found


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__array__")


def _as_batch(array: np.ndarray, input_shape: tuple) -> np.ndarray:
    """`array` as a batch of images the model takes, float32; one image gets a batch axis."""
    if array.ndim == len(input_shape):
        array = array[None]
    if not fits_batch_shape(array.shape, input_shape):
        raise ValueError(
            f"`calibration` images must be shaped like the model's input, {batch_shape_text(input_shape)}. "
            f"Received: calibration.shape={array.shape}"
        )
    if not len(array):
        raise ValueError(f"`calibration` holds no images. Received: calibration.shape={array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"`calibration` must hold pixel values. Received: calibration.dtype={array.dtype}")
    return array.astype("float32", copy=False)


def _iterable_images(batches, input_shape: tuple, limit: int) -> np.ndarray:
    collected, count = [], 0
    items = batches.as_numpy_iterator() if hasattr(batches, "as_numpy_iterator") else iter(batches)
    for item in items:
        if isinstance(item, (tuple, list)) and item and not np.isscalar(item[0]):
            item = item[0]  # (images, labels)
        batch = _as_batch(np.asarray(item), input_shape)
        collected.append(batch[: limit - count])
        count += len(collected[-1])
        if count >= limit:
            break
    if not collected:
        raise ValueError("`calibration` yielded no images: pass a non-empty dataset or iterable of batches.")
    return np.concatenate(collected)


def _folder_images(folder, input_shape: tuple, limit: int, progress) -> np.ndarray:
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"`calibration` is not a folder. Received: calibration={folder!r}")
    height, width, channels = input_shape
    if height is None or height != width or channels != 3:
        raise ValueError(
            "Calibrating from a folder needs a model that takes square RGB images of a fixed size, "
            "channels last; build it with input_shape=(size, size, 3), or pass an array of images. "
            f"Received: input_shape={input_shape}"
        )
    paths = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(images_lib.IMAGE_EXTENSIONS)
    )[:limit]
    if not paths:
        raise ValueError(
            f"`calibration` folder {folder} holds no images ({', '.join(images_lib.IMAGE_EXTENSIONS)})."
        )
    loaded = []
    for count, path in enumerate(paths, 1):
        loaded.append(images_lib.load_image(path, size=height))
        if progress is not None:
            progress(count, len(paths))
    return np.stack(loaded)
