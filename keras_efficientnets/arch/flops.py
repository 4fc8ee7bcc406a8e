"""Multiply-adds and parameter counts of an EfficientNet, without building it.

The counts follow the layout of `scaling.plan_model`, the same plan the Keras
builder turns into layers, so the parameter counts here equal the built model's
``count_params()`` exactly, and no Keras is imported.

What counts as a multiply-add (MAC). `FlopsReport.conv_macs` holds the
paper-style count of the weighted layers:

- every convolution: ``H_out * W_out * kernel_h * kernel_w * in_channels *
  out_channels`` (depthwise: one input channel per output channel);
- the two 1x1 convolutions of squeeze-excite, which run on a 1 x 1 map;
- the classifier: ``features * classes``.

`FlopsReport.macs` adds one operation per output element of each elementwise
layer of the inference graph: BatchNorm (a fused scale-and-shift), every
activation, the squeeze-excite gate multiply and the residual add. With them
the totals land within 1% of timm's table for B0-B7 and within 2.5% of the
reference README's EfficientNet-Lite figures; the weighted layers alone come out
2-5% low (B0: 0.386 against 0.40 GMACs). Not counted anywhere: biases, pooling,
dropout and the input normalization (together under 0.1%).

Spatial sizes use TensorFlow 'same' padding, which Keras 3's ``padding="same"``
gives on every backend: a stride-2 layer maps H to ceil(H / 2).
"""

from __future__ import annotations

import dataclasses

from keras_efficientnets._common.validation import check_bool, check_int, is_int, received
from keras_efficientnets.arch.scaling import (
    PLAN_KEYWORDS,
    STEM_STRIDE,
    ModelPlan,
    dilate,
    plan_model,
    plan_variant,
)
from keras_efficientnets.arch.variants import get_default_block_list, get_variant

__all__ = ["FlopsReport", "count_flops", "count_plan", "count_variant_flops"]

# Stem: 3x3 stride-2 convolution; head: 1x1 convolution.
_STEM_KERNEL = 3
# BatchNorm holds gamma and beta (trained) and moving mean and variance (not).
_BN_TRAINABLE = 2
_BN_NON_TRAINABLE = 2


@dataclasses.dataclass(frozen=True)
class FlopsReport:
    """Cost of one model configuration.

    Attributes:
        macs: Operations of one forward pass on one image: `conv_macs` plus one
            per output element of BatchNorm, activations, the squeeze-excite
            multiply and residual adds.
        conv_macs: Multiply-adds of the convolutions and the classifier only.
        params: All weights, as Keras ``count_params()`` reports them (BatchNorm
            moving statistics included).
        trainable_params: Weights a Keras model trains (BatchNorm moving
            statistics excluded).
        resolution: The (height, width) the counts are for.
    """

    macs: int
    conv_macs: int
    params: int
    trainable_params: int
    resolution: tuple[int, int]

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def gmacs(self) -> float:
        """Multiply-adds in billions (the unit of the paper's FLOPs column)."""
        return self.macs / 1e9

    @property
    def flops(self) -> int:
        """Floating-point operations, counting a multiply-add as two."""
        return 2 * self.macs


class _Counter:
    """Accumulates MACs and parameters layer by layer, following the tensor's shape.

    A CondConv convolution holds `experts` kernels but computes once, with their
    mixture: its parameters count `experts` times, its MACs once, plus the mixing
    (a multiply-add per kernel weight and expert), as the CondConv paper counts.
    """

    def __init__(self, height, width, channels):
        self.height, self.width, self.channels = height, width, channels
        self.macs = 0
        self.elementwise = 0
        self.trainable = 0
        self.non_trainable = 0

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def stride(self, strides) -> None:
        # 'same' padding: a stride s maps H to ceil(H / s).
        self.height, self.width = -(-self.height // strides[0]), -(-self.width // strides[1])

    def conv(self, kernel, out_channels, strides=(1, 1), experts=0):
        self.stride(strides)
        weights = kernel * kernel * self.channels * out_channels
        self.macs += self.pixels * weights + experts * weights
        self.trainable += weights * max(1, experts)
        self.channels = out_channels

    def depthwise(self, kernel, strides, experts=0):
        self.stride(strides)
        weights = kernel * kernel * self.channels
        self.macs += self.pixels * weights + experts * weights
        self.trainable += weights * max(1, experts)

    def dense(self, in_channels, out_channels):
        """A 1 x 1 layer with bias on pooled features (squeeze-excite, CondConv routing)."""
        self.macs += in_channels * out_channels
        self.trainable += in_channels * out_channels + out_channels

    def batch_norm(self, activation=True):
        # One fused scale-and-shift per element, plus the activation after it.
        self.elementwise += self.pixels * self.channels * (2 if activation else 1)
        self.trainable += _BN_TRAINABLE * self.channels
        self.non_trainable += _BN_NON_TRAINABLE * self.channels

    def squeeze_excite(self, block):
        """Two 1 x 1 convolutions with bias on the pooled map, and the gate multiply."""
        self.dense(self.channels, block.se_filters)
        self.dense(block.se_filters, self.channels)
        self.elementwise += self.pixels * self.channels

    def mbconv(self, block):
        args, experts = block.args, block.num_experts
        if experts:  # routing: a sigmoid Dense on the pooled block input
            self.dense(self.channels, experts)
        if args.expand_ratio != 1:
            self.conv(1, block.expanded_filters, experts=experts)
            self.batch_norm()
        self.depthwise(args.kernel_size, args.strides, experts=experts)
        self.batch_norm()
        if args.has_se:
            self.squeeze_excite(block)
        self.conv(1, args.output_filters, experts=experts)
        self.batch_norm(activation=False)

    def fused(self, block):
        args = block.args
        if args.expand_ratio != 1:
            # One k x k convolution, with the stride, replaces expansion and depthwise.
            self.conv(args.kernel_size, block.expanded_filters, args.strides)
            self.batch_norm()
            if args.has_se:
                self.squeeze_excite(block)
            self.conv(1, args.output_filters)
            self.batch_norm(activation=False)
        else:
            # With no expansion, that convolution goes straight to the output width.
            if args.has_se:
                self.squeeze_excite(block)
            self.conv(args.kernel_size, args.output_filters, args.strides)
            self.batch_norm()


def _resolution_pair(resolution) -> tuple[int, int]:
    problem = "`resolution` must be a positive integer or a (height, width) pair of them. " + received(
        "resolution", resolution
    )
    if is_int(resolution):
        pair = (resolution, resolution)
    else:
        try:
            pair = tuple(resolution)
        except TypeError:
            raise TypeError(problem) from None
    if len(pair) != 2 or not all(is_int(v) for v in pair):
        raise TypeError(problem)
    if not all(v >= 1 for v in pair):
        raise ValueError(problem)
    return int(pair[0]), int(pair[1])


def count_flops(
    block_args_list,
    width_coefficient: float,
    depth_coefficient: float,
    resolution,
    include_top: bool = True,
    classes: int = 1000,
    depth_divisor: int = 8,
    min_depth: int | None = None,
    fix_stem_and_head: bool = False,
    use_se: bool = True,
    *,
    round_limit: float = 0.9,
    stem_filters: int | None = None,
    condconv_experts: int = 4,
    input_channels: int = 3,
    output_stride: int | None = None,
) -> FlopsReport:
    """Counts the multiply-adds and parameters of the model the builder makes.

    Args:
        block_args_list: The unscaled stages (`BlockArgs`), as given to
            `EfficientNet`; None for the B0 stages.
        width_coefficient: Channel multiplier.
        depth_coefficient: Block-count multiplier.
        resolution: Input size: an int for square images or (height, width).
        include_top: Whether to count the classifier (a Dense layer).
        classes: Classifier outputs.
        depth_divisor: Channel counts are rounded to multiples of this.
        min_depth: Smallest channel count after rounding (default: divisor).
        fix_stem_and_head: EfficientNet-Lite's fixed stem and head.
        use_se: False counts no squeeze-excite (EfficientNet-Lite).
        round_limit, stem_filters, condconv_experts: As `scaling.plan_model`'s
            (EfficientNetV2: ``round_limit=0``; EdgeTPU: ``stem_filters=32``).
        input_channels: Channels of the input images.
        output_stride: As `EfficientNet`'s: the blocks past it run on larger
            maps (`scaling.dilate`), which costs more multiply-adds.

    Returns:
        A `FlopsReport`.

    Example:
        >>> from keras_efficientnets.arch.variants import get_default_block_list
        >>> report = count_flops(get_default_block_list(), 1.0, 1.0, 224)
        >>> report.params, report.trainable_params
        (5330564, 5288548)
        >>> round(report.gmacs, 3), round(report.conv_macs / 1e9, 3)
        (0.401, 0.386)
    """
    if block_args_list is None:
        block_args_list = get_default_block_list()
    arguments = dict(locals())
    plan = plan_model(**{name: arguments[name] for name in PLAN_KEYWORDS if name in arguments})
    return count_plan(
        dilate(plan, output_stride),
        resolution,
        include_top=include_top,
        classes=classes,
        input_channels=input_channels,
    )


def count_plan(
    plan: ModelPlan, resolution, include_top: bool = True, classes: int = 1000, input_channels: int = 3
) -> FlopsReport:
    """`count_flops` of a plan made by `scaling.plan_model`, on images of `input_channels` channels.

    Example:
        >>> from keras_efficientnets.arch.scaling import plan_variant
        >>> count_plan(plan_variant("b0"), 224).params
        5330564
    """
    height, width = _resolution_pair(resolution)
    classes = check_int("classes", classes, minimum=1)
    include_top = check_bool("include_top", include_top)
    input_channels = check_int("input_channels", input_channels, minimum=1)
    count = _Counter(height, width, input_channels)

    count.conv(_STEM_KERNEL, plan.stem_filters, (STEM_STRIDE, STEM_STRIDE))
    count.batch_norm()
    for block in plan.blocks:
        if block.args.fused:
            count.fused(block)
        else:
            count.mbconv(block)
        if block.has_residual:
            count.elementwise += count.pixels * count.channels
    count.conv(1, plan.head_filters)
    count.batch_norm()
    if include_top:
        count.macs += plan.head_filters * classes
        count.trainable += plan.head_filters * classes + classes

    return FlopsReport(
        macs=int(count.macs + count.elementwise),
        conv_macs=int(count.macs),
        params=int(count.trainable + count.non_trainable),
        trainable_params=int(count.trainable),
        resolution=_resolution_pair(resolution),
    )


def count_variant_flops(
    name: str,
    resolution=None,
    include_top: bool = True,
    classes: int = 1000,
    output_stride: int | None = None,
) -> FlopsReport:
    """`count_flops` for a named variant of the table in `config.VARIANTS`.

    Args:
        name: A variant name such as ``"b0"``, ``"EfficientNetB3"`` or ``"lite1"``.
        resolution: Input size; None for the variant's native resolution.
        include_top: Whether to count the classifier.
        classes: Classifier outputs.
        output_stride: As `EfficientNet`'s (None: the variant's own, 32).

    Returns:
        A `FlopsReport`.

    Example:
        >>> count_variant_flops("lite0").params
        4694024
        >>> count_variant_flops("b7").resolution
        (600, 600)
    """
    variant = get_variant(name)
    return count_plan(
        dilate(plan_variant(variant.name), output_stride),
        variant.resolution if resolution is None else resolution,
        include_top=include_top,
        classes=classes,
    )
