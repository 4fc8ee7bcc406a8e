"""Reading image files as the models take them: RGB in [0, 255], float32. One decoder for every command.

Pillow decodes; what it gives is brought to 8-bit RGB the same way for every
caller: 16-bit images (``I;16`` PNGs, common from scientific cameras) are
scaled down, not clipped to white; grayscale is repeated over three channels;
transparency is dropped; palettes are expanded; the EXIF orientation a camera
records is applied, so a portrait photo is upright. Images larger than Pillow's
decompression-bomb limit, and float images with NaN pixels, are refused. Keras-free; Pillow is
imported when an image is read.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from keras_efficientnets._common.validation import check_int

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_SIZE",
    "ImageError",
    "center_crop",
    "check_images",
    "hidden_folders",
    "image_folder",
    "load_image",
]

# The largest side `load_image(size=)` and training take: far above any model's resolution (L2's
# 800), and an image of it (200 MB as float32) still fits in memory.
MAX_IMAGE_SIZE = 4096
# The files `image_folder` takes as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class ImageError(ValueError):
    """An image file cannot be read: missing, corrupt, not an image, or a decompression bomb."""


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("Reading images needs Pillow: pip install pillow") from None
    return Image


def _open(path: str):
    """The decoded PIL image, with a decompression bomb an error rather than a warning."""
    image_lib = _pil()
    from PIL import ImageOps

    if not os.path.isfile(path):
        raise ImageError(f"No such image file: {path}. Pass the path of a JPEG or PNG file.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_lib.DecompressionBombWarning)
            image = image_lib.open(path)
            image.load()
            # A camera stores a portrait photo sideways and says so in its EXIF Orientation tag.
            image = ImageOps.exif_transpose(image)
    except (image_lib.DecompressionBombError, image_lib.DecompressionBombWarning) as error:
        raise ImageError(f"{path} is too large to decode safely ({error}). Resize it first.") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(
            f"Cannot read {path} as an image ({type(error).__name__}: {error}): pass a JPEG or PNG file."
        ) from None
    if image.mode == "F" and not np.isfinite(np.asarray(image)).all():
        raise ImageError(f"{path} holds NaN or infinite pixel values: pass an image of finite values.")
    return image


# Gray modes wider than 8 bits, in which Pillow opens 16-bit PNGs and TIFFs. Pillow's own
# conversion to RGB clips them at 255 (a white image); they are scaled instead.
_SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_rgb(image) -> np.ndarray:
    """8-bit-range RGB of any Pillow mode, as float32 in [0, 255]."""
    if image.mode in _SIXTEEN_BIT_GRAY:
        gray = np.clip(np.asarray(image, dtype="float32"), 0, 65535) * (255.0 / 65535.0)
    elif image.mode == "F":
        # Float images: [0, 1] if they fit in it, else taken as [0, 255].
        values = np.asarray(image, dtype="float32")
        gray = np.clip(values * 255.0 if values.max() <= 1.0 else values, 0.0, 255.0)
    else:
        return np.asarray(image.convert("RGB"), dtype="float32")
    return np.repeat(gray[..., None], 3, axis=-1)


def load_image(
    path,
    size: int | None = None,
    crop_padding: int = 0,
    *,
    crop_fraction: float | None = None,
    interpolation: str = "bicubic",
) -> np.ndarray:
    """An image file as an (H, W, 3) float32 array of RGB in [0, 255].

    Args:
        path: The image file.
        size: If given, the centre square is cropped (see `center_crop`) and
            resized to size x size.
        crop_padding: With `size`: crop ``size / (size + crop_padding)`` of
            the shorter side, as the reference evaluation does with 32.
        crop_fraction: With `size`: the share of the shorter side to crop
            instead (timm's ``crop_pct``); None to use `crop_padding`.
        interpolation: The resize's resampling: "bicubic" (the reference's),
            "bilinear", ... (PIL's filters by name).

    Raises:
        ImageError: The file is missing, not an image, corrupt, or too large.

    Example:
        >>> from skimage import data
        >>> import skimage, os
        >>> path = os.path.join(os.path.dirname(skimage.__file__), "data", "coffee.png")
        >>> load_image(path, size=224).shape
        (224, 224, 3)
    """
    path = os.fspath(path)
    if size is not None:
        size = check_int("size", size, minimum=1, maximum=MAX_IMAGE_SIZE)
    image = _open(path)
    if size is None:
        return _to_rgb(image)
    return center_crop(image, size, crop_padding, fraction=crop_fraction, interpolation=interpolation)


def center_crop(
    image, size: int, padding: int = 0, *, fraction: float | None = None, interpolation: str = "bicubic"
) -> np.ndarray:
    """The centre square of a PIL image (less `padding` in reference proportion), resized to `size`.

    The reference evaluation crops ``size / (size + 32)`` of the shorter side
    (tensorflow/tpu efficientnet preprocessing.py, CROP_PADDING = 32); with
    ``padding=0`` the whole centre square is kept. A `fraction` (timm's
    ``crop_pct``) keeps that share of the shorter side instead.
    """
    image_lib = _pil()
    rgb = image_lib.fromarray(np.clip(_to_rgb(image), 0, 255).round().astype("uint8"))
    width, height = rgb.size
    side = min(width, height) * (size / (size + padding) if fraction is None else fraction)
    left, top = (width - side) / 2, (height - side) / 2
    box = (round(left), round(top), round(left + side), round(top + side))
    resampling = getattr(image_lib.Resampling, interpolation.upper())
    resized = rgb.resize((size, size), resampling, box=box)
    return np.asarray(resized, dtype="float32")


def image_folder(root) -> tuple[list[str], list[int], list[str]]:
    """The images of a folder with one subfolder per class: paths, class indices, class names.

    Classes are the subfolders in sorted order, but for hidden ones (`hidden_folders`: ``.git``,
    ``.ipynb_checkpoints``); images are the files with an `IMAGE_EXTENSIONS` ending, in sorted order.

    Raises:
        ValueError: Not a folder, fewer than 2 classes, or a class without images.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"No such folder: {root}. Pass a folder with one subfolder of images per class."
        )
    classes = [d for d in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, d))]
    classes = [d for d in classes if not d.startswith(".")]  # .git, .ipynb_checkpoints: no classes
    if len(classes) < 2:
        raise ValueError(
            f"{root} has {len(classes)} class subfolders; training needs at least 2 "
            "(one folder of images per class)."
        )
    paths, labels = [], []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise ValueError(f"The class folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
        paths += [os.path.join(folder, f) for f in files]
        labels += [index] * len(files)
    return paths, labels, classes


def hidden_folders(root) -> list[str]:
    """The subfolders of `root` whose names start with a dot, which `image_folder` skips."""
    root = os.fspath(root)
    return sorted(d for d in os.listdir(root) if d.startswith(".") and os.path.isdir(os.path.join(root, d)))


def check_images(paths, progress=None) -> None:
    """Decodes every image once, so that a bad file fails now, named, not minutes into training.

    Args:
        paths: Image files.
        progress: Called with the number checked so far, e.g. to draw a progress bar.

    Raises:
        ImageError: The first file that cannot be read, by name.
    """
    for count, path in enumerate(paths, 1):
        _open(path)
        if progress is not None:
            progress(count)
