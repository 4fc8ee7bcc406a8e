"""PyTorch state dicts as weights: timm's and efficientnet_pytorch's, from ``.safetensors`` or ``.pth``.

No torch is needed and no pickle code runs: ``.safetensors`` files are read by
the `safetensors` package (raw arrays after a JSON header), ``.pth`` files by
the safe reader `torch_pickle`. Which name map applies is read off the keys
(`checkpoints.is_timm_state_dict`), so ``weights=<file>`` needs no format
argument. A timm checkpoint downloaded from the Hugging Face Hub has its
``config.json`` beside it; its ``pretrained_cfg`` gives the input normalization
the weights were trained with.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

import keras_efficientnets.weights.checkpoints as checkpoints
import keras_efficientnets.weights.torch_pickle as torch_pickle
from keras_efficientnets._common.fileio import read_json_object
from keras_efficientnets._common.optional import require
from keras_efficientnets._common.validation import is_int
from keras_efficientnets.arch.scaling import ModelPlan

__all__ = [
    "STATE_DICT_SUFFIXES",
    "CheckpointConfig",
    "checkpoint_normalization",
    "read_checkpoint_config",
    "read_state_dict",
    "table_from_state_dict",
]

STATE_DICT_SUFFIXES = (".safetensors", ".pth")
# A Hub checkpoint's settings file, beside its weights in the snapshot folder.
_HUB_CONFIG = "config.json"


def _damaged(path, error) -> ValueError:
    detail = " ".join(str(error).split())[:300]
    return ValueError(f"Could not read {path!r} as a PyTorch state dict ({type(error).__name__}: {detail}).")


def read_state_dict(path) -> dict[str, np.ndarray]:
    """Reads a ``.safetensors`` or ``.pth`` state dict as name -> NumPy array, running no code.

    Raises:
        ValueError: The file is damaged, is not a state dict, or has another suffix.
        FileNotFoundError: No such file.
    """
    path = os.fspath(path)
    if not path.endswith(STATE_DICT_SUFFIXES):
        raise ValueError(
            f"A state dict file must end in {' or '.join(STATE_DICT_SUFFIXES)}. Received: path={path!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}. Received: path={path!r}")
    if path.endswith(".pth"):
        try:
            return torch_pickle.load_state_dict(path)
        except torch_pickle.UnsafePickleError as error:
            raise _damaged(path, error) from None
    safetensors_numpy = require("safetensors.numpy", "Reading .safetensors weights")
    try:
        return safetensors_numpy.load_file(path)
    except Exception as error:  # the library's errors have no common base (SafetensorError, OSError...)
        raise _damaged(path, error) from None


def table_from_state_dict(state: dict, plan: ModelPlan, depthwise_name: str = "dwconv") -> dict:
    """A timm or efficientnet_pytorch state dict as a Keras weight table (`checkpoints`).

    Example:
        >>> from keras_efficientnets.arch.scaling import plan_variant
        >>> table = table_from_state_dict({"conv_stem.weight": np.zeros((32, 3, 3, 3))}, plan_variant("b0"))
        >>> table["stem_conv"]["kernel"].shape
        (3, 3, 3, 32)
    """
    if checkpoints.is_timm_state_dict(state):
        return checkpoints.table_from_timm(state, plan, depthwise_name)
    return checkpoints.table_from_efficientnet_pytorch(state, checkpoints.block_prefixes(plan))


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """What a timm checkpoint's ``config.json`` says that loading uses; all None without one.

    Attributes:
        architecture: timm's name of the network, e.g. ``"tf_efficientnet_b0"``.
        normalization: (mean, std) on the 0-255 scale (timm states them on 0-1).
        classes: The classifier's class count.
        input_size: The side of the square images the weights were evaluated on.
        crop_fraction: The share of the shorter side that evaluation crop keeps
            (timm's ``crop_pct``), before resizing it to `input_size`.
        interpolation: The resampling of that resize (``"bicubic"``, ``"bilinear"``...).
    """

    architecture: str | None = None
    normalization: tuple[list, list] | None = None
    classes: int | None = None
    input_size: int | None = None
    crop_fraction: float | None = None
    interpolation: str | None = None


def read_checkpoint_config(path) -> CheckpointConfig:
    """The ``config.json`` beside a checkpoint file (or that file itself), read once.

    Raises:
        ValueError: It is not a JSON object, or its mean/std are not three numbers each.
    """
    config_path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(path))), _HUB_CONFIG)
    if not os.path.isfile(config_path):
        return CheckpointConfig()
    config = read_json_object(config_path, "The checkpoint's")
    architecture, classes = config.get("architecture"), config.get("num_classes")
    pretrained = config.get("pretrained_cfg")
    return CheckpointConfig(
        architecture=architecture if isinstance(architecture, str) else None,
        normalization=_normalization(pretrained, config_path),
        classes=classes if is_int(classes) else None,
        **_evaluation(pretrained if isinstance(pretrained, dict) else {}, config_path),
    )


def checkpoint_normalization(path) -> tuple[list, list] | None:
    """The (mean, std) on the 0-255 scale that a Hub checkpoint's ``config.json`` gives, or None."""
    return read_checkpoint_config(path).normalization


def _normalization(pretrained, config_path: str) -> tuple[list, list] | None:
    if not isinstance(pretrained, dict) or "mean" not in pretrained or "std" not in pretrained:
        return None
    constants = []
    for field in ("mean", "std"):
        values = pretrained[field]
        if not (isinstance(values, list) and len(values) == 3 and all(_is_number(v) for v in values)):
            raise ValueError(
                f"The checkpoint's {config_path!r} gives pretrained_cfg.{field}={values!r}: expected "
                "three numbers (R, G, B) on the 0-1 scale."
            )
        constants.append([255.0 * v for v in values])
    return constants[0], constants[1]


# PIL's resampling filters by timm's names for them.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")


def _evaluation(pretrained: dict, config_path: str) -> dict:
    """input_size, crop_fraction and interpolation of a ``pretrained_cfg``, each None if absent."""
    size, fraction, interpolation = (pretrained.get(k) for k in ("input_size", "crop_pct", "interpolation"))
    problems = []
    if size is not None and not (
        isinstance(size, list)
        and len(size) == 3
        and all(is_int(d) and d > 0 for d in size)
        and size[1] == size[2]
    ):
        problems.append(f"pretrained_cfg.input_size={size!r} (expected [3, side, side])")
    if fraction is not None and not (_is_number(fraction) and 0 < fraction <= 1):
        problems.append(f"pretrained_cfg.crop_pct={fraction!r} (expected a number in (0, 1])")
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        problems.append(f"pretrained_cfg.interpolation={interpolation!r} (expected one of {INTERPOLATIONS})")
    if problems:
        raise ValueError(f"The checkpoint's {config_path!r} gives {'; '.join(problems)}.")
    return {
        "input_size": None if size is None else int(size[1]),
        "crop_fraction": None if fraction is None else float(fraction),
        "interpolation": interpolation,
    }


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
