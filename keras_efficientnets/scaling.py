"""Compound scaling of a block list: the exact layout of the model the builder makes.

Keras-free on purpose: `model.py` builds its graph from `plan_model`, and the
FLOPs counter and the coefficient search count the same plan without building
anything, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import math
import string

from keras_efficientnets.config import HEAD_FILTERS, BlockArgs

__all__ = ["BlockPlan", "ModelPlan", "round_filters", "round_repeats", "plan_model"]


def round_filters(
    filters: int, width_coefficient: float, depth_divisor: int = 8, min_depth: int | None = None
) -> int:
    """Scales a channel count by `width_coefficient`, to a multiple of `depth_divisor`.

    Rounds to the nearest multiple, never below `min_depth` (default: the
    divisor), and adds one more divisor when rounding lost over 10% of the
    scaled width, as the reference code does (this is why B3's first stage has
    24 channels, not 16).

    Example:
        >>> round_filters(16, 1.2)
        24
        >>> round_filters(1280, 2.0)
        2560
    """
    scaled = filters * width_coefficient
    floor = min_depth or depth_divisor
    rounded = max(floor, int(scaled + depth_divisor / 2) // depth_divisor * depth_divisor)
    if rounded < 0.9 * scaled:
        rounded += depth_divisor
    return int(rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    """Scales a stage's block count by `depth_coefficient`, rounding up.

    Example:
        >>> round_repeats(4, 3.1)
        13
    """
    return int(math.ceil(depth_coefficient * repeats))


def _block_letters(index: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa': keras.applications' names, extended past 26."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = string.ascii_lowercase[rest] + letters
    return letters


@dataclasses.dataclass(frozen=True)
class BlockPlan:
    """One MBConv block of a scaled model.

    Attributes:
        name: Layer-name prefix, e.g. ``"block2a_"`` (stage 2, first block).
        args: The block's settings: scaled filters, its own strides, one repeat.
        drop_rate: Its drop-connect rate.
    """

    name: str
    args: BlockArgs

    drop_rate: float

    @property
    def expanded_filters(self) -> int:
        return int(self.args.input_filters * self.args.expand_ratio)

    @property
    def se_filters(self) -> int:
        # The squeeze width follows the block's input channels, not the expanded ones.
        return max(1, int(self.args.input_filters * self.args.se_ratio))

    @property
    def has_residual(self) -> bool:
        args = self.args
        return args.identity_skip and args.strides == (1, 1) and args.input_filters == args.output_filters


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """The channel widths and blocks of a scaled model."""

    stem_filters: int
    blocks: tuple[BlockPlan, ...]
    head_filters: int


def plan_model(
    block_args_list,
    width_coefficient: float,
    depth_coefficient: float,
    drop_connect_rate: float = 0.0,
    depth_divisor: int = 8,
    min_depth: int | None = None,
    fix_stem_and_head: bool = False,
    use_se: bool = True,
) -> ModelPlan:
    """Applies width and depth scaling to stages and lists every block.

    Args:
        block_args_list: The stages (`BlockArgs`), unscaled. Not modified.
        width_coefficient: Channel multiplier.
        depth_coefficient: Block-count multiplier.
        drop_connect_rate: Rate of the last block; block i of N gets
            ``drop_connect_rate * i / N``, N counted after depth scaling.
        depth_divisor: Channel counts are rounded to multiples of this.
        min_depth: Smallest channel count after rounding (default: divisor).
        fix_stem_and_head: EfficientNet-Lite: keep the stem at 32 and the head
            at 1280 channels, and one block in the first and last stage.
        use_se: False drops squeeze-excite from every block.

    Example:
        >>> from keras_efficientnets.config import get_default_block_list
        >>> plan = plan_model(get_default_block_list(), 1.0, 1.0)
        >>> plan.stem_filters, len(plan.blocks), plan.head_filters
        (32, 16, 1280)
    """

    def scale_filters(filters):
        return round_filters(filters, width_coefficient, depth_divisor, min_depth)

    last_stage = len(block_args_list) - 1
    stages = []
    for index, stage in enumerate(block_args_list):
        keep_repeats = fix_stem_and_head and index in (0, last_stage)
        repeats = stage.num_repeat if keep_repeats else round_repeats(stage.num_repeat, depth_coefficient)
        stages.append((stage, repeats))

    # The stem makes the channels the first stage takes (32 for B0's stages).
    # Lite keeps it unscaled, so its first stage takes 32 channels even where
    # scaling would say otherwise (Lite3 and Lite4: 40 and 48).
    first_input = block_args_list[0].input_filters
    stem_filters = first_input if fix_stem_and_head else scale_filters(first_input)
    total_blocks = sum(repeats for _, repeats in stages)
    blocks = []
    for stage_index, (stage, repeats) in enumerate(stages):
        first = dataclasses.replace(
            stage,
            input_filters=stem_filters if stage_index == 0 else scale_filters(stage.input_filters),
            output_filters=scale_filters(stage.output_filters),
            num_repeat=1,
            se_ratio=stage.se_ratio if use_se else None,
        )
        for repeat in range(repeats):
            args = (
                first
                if repeat == 0
                else dataclasses.replace(first, input_filters=first.output_filters, strides=(1, 1))
            )
            blocks.append(
                BlockPlan(
                    name=f"block{stage_index + 1}{_block_letters(repeat)}_",
                    args=args,
                    drop_rate=drop_connect_rate * len(blocks) / total_blocks,
                )
            )

    return ModelPlan(
        stem_filters=stem_filters,
        blocks=tuple(blocks),
        head_filters=HEAD_FILTERS if fix_stem_and_head else scale_filters(HEAD_FILTERS),
    )
