"""The feature pyramid of an EfficientNet, from its plan: channels and reduction of each level. Keras-free.

A detector or segmenter takes an EfficientNet's intermediate feature maps: the
output of the last block at each reduction of the input, stride 2, 4, 8, 16 and
32 for every published model. Level k (keras-hub's ``"Pk"``) is the map at
reduction 2^k: P1 at stride 2, ..., P5 at stride 32. `feature_info` lists them
without building the model; `features.feature_extractor` builds them.

A dilated model (`output_stride` 16 or 8, `scaling.dilate`) keeps its levels:
level k still ends where the undilated network reaches 2^k, but its map is at
reduction min(2^k, output_stride), so the deepest levels share one stride (P4
and P5 at 16 for output_stride=16). A block that gave up its stride shows in
the dilation of the blocks after it, which is how levels are told apart.
"""

from __future__ import annotations

import dataclasses

from keras_efficientnets._common.validation import check_choice, is_int, received
from keras_efficientnets.arch.scaling import STEM_STRIDE, ModelPlan, dilate, plan_variant

__all__ = [
    "P5_SOURCES",
    "FeatureLevel",
    "check_level_names",
    "feature_info",
    "level_names_of_indices",
    "stride_given_up",
]

# Where the deepest level's map comes from: the last block's output (timm's features_only)
# or the head's 1x1 conv after it (`top_activation`, 1280 channels for B0).
P5_SOURCES = ("block", "head")


@dataclasses.dataclass(frozen=True)
class FeatureLevel:
    """One level of the pyramid.

    Attributes:
        level: k of the level: where the undilated network reaches reduction 2^k.
        reduction: The stride of the level's map against the input, whose maps are
            ceil(H / reduction) x ceil(W / reduction): 2^k, or the output stride of
            a dilated model if that is smaller.
        channels: Channels of its map.
        block: The block whose output it is (``"block3b"``), ``"stem"``, or ``"top"``
            for the head.
    """

    level: int
    reduction: int
    channels: int
    block: str

    @property
    def name(self) -> str:
        """keras-hub's name of the level: ``"P3"``."""
        return f"P{self.level}"


def feature_info(model, p5: str = "block", output_stride: int | None = None) -> list[FeatureLevel]:
    """The levels of a model's feature pyramid, shallowest first.

    Args:
        model: A variant name (``"b3"``, ``"EfficientNetV2S"``) or a
            `scaling.ModelPlan` (`plan_model` of your own stages).
        p5: The deepest level's source: "block" (the last block's output) or
            "head" (the 1x1 head convolution after it, `top_activation`).
        output_stride: As `EfficientNet`'s: None for the stages' own strides,
            or 32, 16, 8 (`scaling.dilate`).

    Example:
        >>> [(f.name, f.reduction, f.channels) for f in feature_info("b0")]
        [('P1', 2, 16), ('P2', 4, 24), ('P3', 8, 40), ('P4', 16, 112), ('P5', 32, 320)]
        >>> [f.reduction for f in feature_info("b0", output_stride=8)]
        [2, 4, 8, 8, 8]
        >>> feature_info("b0", p5="head")[-1].channels
        1280
    """
    p5 = check_choice("p5", p5, P5_SOURCES)
    plan = model if isinstance(model, ModelPlan) else plan_variant(model) if isinstance(model, str) else None
    if plan is None:
        raise TypeError(f"`model` must be a variant name or a ModelPlan. {received('model', model)}")
    plan = dilate(plan, output_stride)
    # The stem halves the input; each block's stride divides it further. The last block at
    # each level gives it.
    level_of_stem = STEM_STRIDE.bit_length() - 1
    last = {level_of_stem: FeatureLevel(level_of_stem, STEM_STRIDE, plan.stem_filters, "stem")}
    reduction = undilated_reduction = STEM_STRIDE
    for block, following in zip(plan.blocks, plan.blocks[1:] + (None,), strict=True):
        reduction *= block.args.strides[0]
        undilated_reduction *= block.args.strides[0] * stride_given_up(block, following)
        level = undilated_reduction.bit_length() - 1
        last[level] = FeatureLevel(level, reduction, block.args.output_filters, block.name.rstrip("_"))
    levels = [last[k] for k in sorted(last)]
    if p5 == "head":
        deepest = levels[-1]
        levels[-1] = dataclasses.replace(deepest, channels=plan.head_filters, block="top")
    return levels


def stride_given_up(block, following) -> int:
    """The stride `block` runs without in a dilated model: the dilation the blocks after it gain.

    `block` and `following` are consecutive blocks (`scaling.BlockPlan`, or
    anything with a ``dilation``); `following` is None after the last block.
    """
    return 1 if following is None else following.dilation // block.dilation


def check_level_names(levels, valid: list[str]) -> list[str]:
    """`levels` (None for all) as a list of distinct names of `valid`, shallowest first."""
    if levels is None:
        return list(valid)
    problem = f"`levels` must be a list of distinct level names among {valid}. {received('levels', levels)}"
    if isinstance(levels, str):
        levels = [levels]
    try:
        chosen = list(levels)
    except TypeError:
        raise TypeError(problem) from None
    if not chosen or len(set(map(str, chosen))) != len(chosen) or not set(chosen) <= set(valid):
        raise ValueError(problem)
    return [level for level in valid if level in chosen]


def level_names_of_indices(out_indices, names: list[str]) -> list[str] | None:
    """timm's `out_indices` as level names: positions in `names` (0 is "P1"); None for all."""
    if out_indices is None:
        return None
    problem = (
        f"`out_indices` must be distinct integers from 0 to {len(names) - 1}, the positions of the "
        f"levels {names}. {received('out_indices', out_indices)}"
    )
    try:
        indices = list(out_indices)
    except TypeError:
        raise TypeError(problem) from None
    if not all(is_int(i) for i in indices):
        raise TypeError(problem)
    if not indices or len(set(indices)) != len(indices) or not all(0 <= i < len(names) for i in indices):
        raise ValueError(problem)
    return [names[i] for i in sorted(indices)]
