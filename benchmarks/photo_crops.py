"""Held-out and calibration images for measuring quantization, made offline from scikit-image's photos.

Only the EfficientNet-Lite weights can be had offline, and no labelled image set
can: agreement with the float model is measured on random views of the natural
colour photos scikit-image ships (a cat, a coffee cup, a rocket, an astronaut,
a motorcycle scene), each a random crop (50-100% of the shorter side, any
position), scaled to the model's size, flipped at random and colour-jittered.
Different seeds give different views: the calibration set (seed 1) and the
held-out set (seed 0) share no image.
"""

from __future__ import annotations

import numpy as np

# scikit-image's bundled colour photos of everyday things (the rest are microscopy, astronomy,
# textures or grayscale, far from ImageNet).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle")
CALIBRATION_SEED, HELD_OUT_SEED = 1, 0


def _photos() -> list[np.ndarray]:
    from skimage import data

    photos = []
    for name in PHOTOS:
        photo = getattr(data, name)()
        photos.append(photo[0] if isinstance(photo, tuple) else photo)  # the motorcycle is a stereo pair
    return photos


def photo_crops(count: int, size: int, seed: int, min_scale: float = 0.5) -> np.ndarray:
    """`count` random views of the photos, (count, size, size, 3) float32 RGB in [0, 255].

    Each view's side is `min_scale` to all of the photo's shorter side.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = _photos()
    views = np.empty((count, size, size, 3), "float32")
    for index in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        side = int(min(height, width) * rng.uniform(min_scale, 1.0))
        top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        view = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR), "float32")
        if rng.random() < 0.5:
            view = view[:, ::-1]
        # Colour jitter: brightness, contrast and saturation each within +-20%.
        grey = view.mean(axis=-1, keepdims=True)
        view = grey + (view - grey) * rng.uniform(0.8, 1.2)
        view = view.mean() + (view - view.mean()) * rng.uniform(0.8, 1.2)
        # Whole numbers, as in the 8-bit image files a deployed model reads.
        views[index] = np.clip(view * rng.uniform(0.8, 1.2), 0, 255).round()
    return views
