"""Resolving the `weights` argument of the model constructors and loading weights."""

from __future__ import annotations

import os

__all__ = ["validate_weights_argument", "normalization_for_weights", "load_weights_into"]

_SAVED_SUFFIXES = (".keras", ".weights.h5")


def _is_path(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and weights != "imagenet"


def validate_weights_argument(weights, variant: str | None, include_top: bool, classes: int) -> None:
    """Rejects a `weights` value before any layer is built."""
    if weights is None:
        return
    if weights == "imagenet":
        if variant is None:
            raise ValueError(
                "weights='imagenet' needs a named variant such as EfficientNetB0; the "
                "`EfficientNet` builder takes weights=None or a path. Received: weights='imagenet'"
            )
        if include_top and classes != 1000:
            raise ValueError(
                "ImageNet weights with include_top=True need classes=1000. For a different "
                "number of classes, build with include_top=False and add your own head "
                "(see the README's transfer-learning section). "
                f"Received: classes={classes}"
            )
        return
    if not _is_path(weights):
        raise ValueError(
            "`weights` must be None, 'imagenet' or the path of a .keras or .weights.h5 file. "
            f"Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if not path.endswith(_SAVED_SUFFIXES):
        raise ValueError(f"`weights` path must end in {' or '.join(_SAVED_SUFFIXES)}. Received: weights={path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at {path!r}. Received: weights={path!r}")


def normalization_for_weights(weights, variant: str | None):
    """The normalization a weight set was trained with, or None to keep the builder's."""
    del weights, variant  # Weight files with their own constants arrive with converted weights.


def load_weights_into(model, weights, variant: str | None, include_top: bool) -> None:
    """Loads `weights` (validated by `validate_weights_argument`) into `model`."""
    del include_top
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(
            f"ImageNet weights for EfficientNet {variant!r} are not available in this version. "
            "Pass weights=None for random initialisation, or the path of a .weights.h5 file."
        )
    model.load_weights(os.fspath(weights))
