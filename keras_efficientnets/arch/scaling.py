"""Compound scaling of a block list: the exact layout of the model the builder makes.

Keras-free on purpose: `models.builder` builds its graph from `plan_model`, and the
FLOPs counter and the coefficient search count the same plan without building
anything, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import string

from keras_efficientnets._common.validation import check_bool, check_int, check_real, is_int, received
from keras_efficientnets.arch.variants import HEAD_FILTERS, BlockArgs, get_variant

__all__ = [
    "MAX_BLOCKS",
    "MAX_COEFFICIENT",
    "OUTPUT_STRIDES",
    "PLAN_KEYWORDS",
    "STEM_STRIDE",
    "BlockPlan",
    "ModelPlan",
    "check_block_args_list",
    "check_output_stride",
    "dilate",
    "plan_model",
    "plan_variant",
    "round_filters",
    "round_repeats",
]

# Limits on what a plan may ask for: far above every published model (L2: width 4.3,
# depth 5.3, 88 blocks), low enough that a typo fails at once instead of after
# minutes and gigabytes.
MAX_COEFFICIENT = 100.0
MAX_BLOCKS = 2000

# The stem's 3x3 convolution halves the input, whatever the stages.
STEM_STRIDE = 2
# What `dilate` can hold the deepest map at (`EfficientNet`'s `output_stride`; None keeps the
# stages' own strides, 32 for every published model).
OUTPUT_STRIDES = (8, 16, 32)


def round_filters(
    filters: int,
    width_coefficient: float,
    depth_divisor: int = 8,
    min_depth: int | None = None,
    round_limit: float = 0.9,
) -> int:
    """Scales a channel count by `width_coefficient`, to a multiple of `depth_divisor`.

    Rounds to the nearest multiple, never below `min_depth` (default: the
    divisor), and adds one more divisor when the rounded width is below
    `round_limit` of the scaled one: the reference V1 code's 10% rule (this is
    why B3's first stage has 24 channels, not 16). EfficientNetV2's code has no
    such rule: ``round_limit=0``.

    Example:
        >>> round_filters(16, 1.2)
        24
        >>> round_filters(16, 1.2, round_limit=0)
        16
        >>> round_filters(1280, 2.0)
        2560
    """
    scaled = filters * width_coefficient
    floor = min_depth or depth_divisor
    rounded = max(floor, int(scaled + depth_divisor / 2) // depth_divisor * depth_divisor)
    if rounded < round_limit * scaled:
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
    """One block of a scaled model.

    Attributes:
        name: Layer-name prefix, e.g. ``"block2a_"`` (stage 2, first block).
        args: The block's settings: scaled filters, its own strides, one repeat.
        drop_rate: Its drop-connect rate.
        num_experts: Experts of each CondConv convolution; 0 for plain ones.
        dilation: Dilation of its k x k convolution (`dilate`); 1 unless the
            model runs at a smaller output stride than its stages make.
    """

    name: str
    args: BlockArgs
    drop_rate: float
    num_experts: int = 0
    dilation: int = 1

    @property
    def expanded_filters(self) -> int:
        """Channels after the expansion (MBConv) or the first convolution (fused)."""
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


def check_block_args_list(block_args_list) -> list[BlockArgs]:
    """The stages as a list, checked: non-empty, all `BlockArgs`, each taking what the last gives.

    Example:
        >>> from keras_efficientnets.arch.variants import get_default_block_list
        >>> len(check_block_args_list(get_default_block_list()))
        7
    """
    problem = (
        "`block_args_list` must be a non-empty list of BlockArgs (BlockArgs.from_block_string turns a "
        "block string into one; get_default_block_list() gives B0's stages). "
        + received("block_args_list", block_args_list)
    )
    if isinstance(block_args_list, (str, bytes)) or not hasattr(block_args_list, "__iter__"):
        raise TypeError(problem)
    stages = list(block_args_list)
    if not all(isinstance(stage, BlockArgs) for stage in stages):
        raise TypeError(problem)
    if not stages:
        raise ValueError(problem)
    for index, stage in enumerate(stages):
        if stage.is_empty:
            raise ValueError(
                f"Stage {index} of `block_args_list` is an empty BlockArgs(): fill it in with "
                f"decode_block_string('r1_k3_s11_e1_i32_o16_se0.25'), for example. "
                f"Received: block_args_list[{index}]=BlockArgs()"
            )
    for index in range(1, len(stages)):
        if stages[index].input_filters != stages[index - 1].output_filters:
            raise ValueError(
                f"Stage {index} of `block_args_list` takes input_filters="
                f"{stages[index].input_filters}, but stage {index - 1} gives output_filters="
                f"{stages[index - 1].output_filters}: consecutive stages must chain. "
                f"Received: block_args_list[{index}]={stages[index]!r}"
            )
    return stages


def plan_model(
    block_args_list,
    width_coefficient: float,
    depth_coefficient: float,
    drop_connect_rate: float = 0.0,
    depth_divisor: int = 8,
    min_depth: int | None = None,
    fix_stem_and_head: bool = False,
    use_se: bool = True,
    *,
    round_limit: float = 0.9,
    stem_filters: int | None = None,
    condconv_experts: int = 4,
) -> ModelPlan:
    """Applies width and depth scaling to stages and lists every block.

    Args:
        block_args_list: The stages (`BlockArgs`), unscaled. Not modified.
        width_coefficient: Channel multiplier, in (0, `MAX_COEFFICIENT`].
        depth_coefficient: Block-count multiplier, in (0, `MAX_COEFFICIENT`].
        drop_connect_rate: Rate of the last block; block i of N gets
            ``drop_connect_rate * i / N``, N counted after depth scaling.
        depth_divisor: Channel counts are rounded to multiples of this.
        min_depth: Smallest channel count after rounding (default: divisor).
        fix_stem_and_head: EfficientNet-Lite: keep the stem at 32 and the head
            at 1280 channels, and one block in the first and last stage.
        use_se: False drops squeeze-excite from every block.
        round_limit: `round_filters`' limit: 0.9 for V1's rule, 0 for V2's.
        stem_filters: The stem's width before scaling; None for the first
            stage's input_filters. EdgeTPU's stem makes 32 channels while its
            first stage expands from 24: that stage's kernel takes what the stem
            gives, its expanded width follows its input_filters.
        condconv_experts: Experts of the CondConv convolutions of `condconv` stages.

    Raises:
        TypeError, ValueError: A bad argument, or a plan of more than
            `MAX_BLOCKS` blocks.

    Example:
        >>> from keras_efficientnets.arch.variants import get_default_block_list
        >>> plan = plan_model(get_default_block_list(), 1.0, 1.0)
        >>> plan.stem_filters, len(plan.blocks), plan.head_filters
        (32, 16, 1280)
    """
    block_args_list = check_block_args_list(block_args_list)
    for name, value in (("width_coefficient", width_coefficient), ("depth_coefficient", depth_coefficient)):
        check_real(name, value, minimum=0, maximum=MAX_COEFFICIENT, min_open=True)
    drop_connect_rate = check_real(
        "drop_connect_rate", drop_connect_rate, minimum=0, maximum=1, max_open=True
    )
    depth_divisor = check_int("depth_divisor", depth_divisor, minimum=1)
    if min_depth is not None:
        min_depth = check_int("min_depth", min_depth, minimum=1)
    fix_stem_and_head = check_bool("fix_stem_and_head", fix_stem_and_head)
    use_se = check_bool("use_se", use_se)
    round_limit = check_real("round_limit", round_limit, minimum=0, maximum=1)
    if stem_filters is not None:
        stem_filters = check_int("stem_filters", stem_filters, minimum=1)
    condconv_experts = check_int("condconv_experts", condconv_experts, minimum=1, maximum=64)

    def scale_filters(filters):
        return round_filters(filters, width_coefficient, depth_divisor, min_depth, round_limit)

    stages = _stage_repeats(block_args_list, depth_coefficient, fix_stem_and_head)
    total_blocks = sum(repeats for _, repeats in stages)
    if total_blocks > MAX_BLOCKS:
        raise ValueError(
            f"The scaled model would have {total_blocks:,} blocks, more than the {MAX_BLOCKS:,} accepted: "
            "lower `depth_coefficient` or the stages' num_repeat. "
            + received("depth_coefficient", depth_coefficient)
        )

    # The stem makes the channels the first stage takes (32 for B0's stages), unless
    # `stem_filters` says otherwise. Lite keeps it unscaled, so its first stage takes 32
    # channels even where scaling would say otherwise (Lite3 and Lite4: 40 and 48).
    first_input = block_args_list[0].input_filters
    stem = first_input if stem_filters is None else stem_filters
    stem = stem if fix_stem_and_head else scale_filters(stem)
    blocks = []
    for stage_index, (stage, repeats) in enumerate(stages):
        if stage_index > 0:
            first_input = scale_filters(stage.input_filters)
        elif stem_filters is None:
            first_input = stem
        else:
            first_input = scale_filters(first_input)
        first = dataclasses.replace(
            stage,
            input_filters=first_input,
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
                    num_experts=condconv_experts if args.condconv else 0,
                )
            )
    if blocks[0].has_residual and blocks[0].args.input_filters != stem:
        raise ValueError(
            f"The stem makes {stem} channels, but the first block would add them to its own "
            f"{blocks[0].args.input_filters}: give the first stage noskip, or stem_filters equal to its "
            f"input_filters. {received('stem_filters', stem_filters)}"
        )
    return ModelPlan(
        stem_filters=stem,
        blocks=tuple(blocks),
        head_filters=HEAD_FILTERS if fix_stem_and_head else scale_filters(HEAD_FILTERS),
    )


def check_output_stride(output_stride) -> int | None:
    """`output_stride` checked: None, or one of `OUTPUT_STRIDES`."""
    if output_stride is None or (is_int(output_stride) and output_stride in OUTPUT_STRIDES):
        return None if output_stride is None else int(output_stride)
    # A ValueError for every wrong value, strings included: the fix is the same.
    raise ValueError(
        "`output_stride` must be None (the stages' own strides), 32, 16 or 8: the reduction of the "
        "deepest feature map, kept by dilating the kernels of the blocks past it. "
        + received("output_stride", output_stride)
    )


def dilate(plan: ModelPlan, output_stride: int | None) -> ModelPlan:
    """`plan` with its deepest maps held at `output_stride` (timm's rule for dilated backbones).

    Counting from the stem's stride, the first block whose stride would take the
    reduction past `output_stride` runs at stride 1 with the dilation so far, and
    every block after it dilates its k x k kernel by that stride too: the same
    weights see the same neighbourhood on a map 2x (or 4x) larger. None, or an
    output stride the stages never pass, returns `plan` as it is.

    Example:
        >>> plan = dilate(plan_variant("b0"), 16)
        >>> [(b.name, b.args.strides[0], b.dilation) for b in plan.blocks[11:13]]
        [('block6a_', 1, 1), ('block6b_', 1, 2)]
    """
    output_stride = check_output_stride(output_stride)
    if output_stride is None:
        return plan
    reduction, dilation, blocks = STEM_STRIDE, 1, []
    for block in plan.blocks:
        stride, own_dilation = block.args.strides[0], dilation
        if reduction * stride > output_stride:
            dilation *= stride
            block = dataclasses.replace(block, args=dataclasses.replace(block.args, strides=(1, 1)))
        else:
            reduction *= stride
        # Times its own: dilating a dilated plan composes (16, then 8, gives 8's plan).
        blocks.append(dataclasses.replace(block, dilation=block.dilation * own_dilation))
    return dataclasses.replace(plan, blocks=tuple(blocks))


def _stage_repeats(block_args_list, depth_coefficient, fix_stem_and_head) -> list[tuple[BlockArgs, int]]:
    """Each stage with its block count after depth scaling (Lite keeps its first and last at one)."""
    last_stage = len(block_args_list) - 1
    stages = []
    for index, stage in enumerate(block_args_list):
        keep_repeats = fix_stem_and_head and index in (0, last_stage)
        repeats = stage.num_repeat if keep_repeats else round_repeats(stage.num_repeat, depth_coefficient)
        stages.append((stage, repeats))
    return stages


def plan_variant(name: str, drop_connect_rate: float = 0.0) -> ModelPlan:
    """The plan of a named variant of `config.VARIANTS`.

    Example:
        >>> len(plan_variant("b7").blocks)
        55
        >>> plan_variant("v2s").stem_filters
        24
    """
    variant = get_variant(name)
    # The family's builder keywords that are plan_model's; the others shape layers, not the plan.
    options = {key: value for key, value in variant.family_options.items() if key in PLAN_KEYWORDS}
    return plan_model(
        variant.block_args_list(),
        variant.width_coefficient,
        variant.depth_coefficient,
        drop_connect_rate=drop_connect_rate,
        **options,
    )


# plan_model's arguments: what BuildConfig, count_flops and plan_variant pass on by name.
PLAN_KEYWORDS = frozenset(inspect.signature(plan_model).parameters)
