"""The EfficientNet builder and the named variants B0-B8, L2 and Lite0-Lite4.

`EfficientNet` (and every named constructor) turns its arguments into a
`build_config.BuildConfig`, validated once; `build` makes the graph from the
config's plan with the layers of `blocks`, and loads the weights (`weights`).
The named constructors are generated from `config.VARIANTS` and take every
default they do not set from `BuildConfig`.
"""

from __future__ import annotations

import dataclasses

import keras

import keras_efficientnets.weights.loading as weights_lib
from keras_efficientnets._common.validation import check_bool, received
from keras_efficientnets.arch.preprocessing import resolve_normalization
from keras_efficientnets.arch.scaling import STEM_STRIDE
from keras_efficientnets.arch.variants import FAMILIES, VARIANTS, Variant
from keras_efficientnets.models.blocks import GraphBuilder
from keras_efficientnets.models.build_config import BuildConfig
from keras_efficientnets.models.features import feature_extractor
from keras_efficientnets.models.graph_depth import room_for_graph_walk
from keras_efficientnets.models.remat import copy_weights_from_twin

__all__ = ["BuildConfig", "EfficientNet", "build"] + [
    variant.constructor_name for variant in VARIANTS.values()
]


# EfficientNet's arguments that are not BuildConfig fields: what to load, and what to build on.
_NOT_BUILD_CONFIG = ("weights", "skip_mismatch", "input_tensor")


def EfficientNet(
    input_shape,
    block_args_list,
    width_coefficient: float,
    depth_coefficient: float,
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classes: int = 1000,
    dropout_rate: float = 0.0,
    drop_connect_rate: float = 0.0,
    batch_norm_momentum: float = 0.99,
    batch_norm_epsilon: float = 1e-3,
    depth_divisor: int = 8,
    min_depth: int | None = None,
    data_format: str | None = None,
    default_size: int | None = None,
    *,
    activation="swish",
    use_se: bool = True,
    fix_stem_and_head: bool = False,
    classifier_activation="softmax",
    include_preprocessing: bool = True,
    normalization="imagenet",
    skip_mismatch: bool = False,
    remat: bool = False,
    dtype=None,
    name: str = "efficientnet",
    round_limit: float = 0.9,
    stem_filters: int | None = None,
    condconv_experts: int = 4,
    sync_batch_norm: bool = False,
    features_only: bool = False,
    out_indices=None,
    p5: str = "block",
    padding: str = "same",
    output_stride: int | None = None,
) -> keras.Model:
    """Builds an EfficientNet from a list of stages.

    Args:
        input_shape: Image shape without the batch axis, e.g. ``(224, 224, 3)``
            (``(3, 224, 224)`` for channels_first); None for
            ``(default_size, default_size, 3)`` with the classifier and
            ``(None, None, 3)`` without it (keras.applications' rule). Spatial
            sizes may be None; static ones must be >= 32.
        block_args_list: The stages, as `BlockArgs` (e.g.
            `config.get_default_block_list()`); None for B0's. Not modified.
        width_coefficient: Channel multiplier.
        depth_coefficient: Block-count multiplier.
        include_top: Whether to end with global pooling and the classifier.
        weights: None (random), or the path of a ``.keras`` / ``.weights.h5``
            file saved from a model with the same configuration, a converted
            ``.weights.h5`` (its ``.weights.json`` sidecar sets the
            normalization), a legacy keras.applications ``.h5`` file, or a timm
            or efficientnet_pytorch state dict (``.safetensors``, ``.pth``).
            Weights load by layer name, all or nothing.
        input_tensor: Optional tensor (e.g. ``keras.Input``) to build on.
        pooling: Without the top: None (the 4D feature map), "avg" or "max".
        classes: Number of classes of the classifier.
        dropout_rate: Dropout before the classifier.
        drop_connect_rate: Drop-connect (stochastic depth) rate of the last
            block; block i of N gets ``drop_connect_rate * i / N``.
        batch_norm_momentum: BatchNormalization momentum.
        batch_norm_epsilon: BatchNormalization epsilon.
        depth_divisor: Channel counts are rounded to multiples of this.
        min_depth: Smallest channel count after rounding (default: divisor).
        data_format: "channels_last" or "channels_first"; None for Keras's
            global setting.
        default_size: Resolution used when `input_shape` is None; None for 224.
        activation: Activation of every block ("swish"; Lite uses "relu6").
        use_se: False drops squeeze-excite from every block.
        fix_stem_and_head: EfficientNet-Lite: stem 32 and head 1280 channels
            unscaled, and one block in the first and last stage.
        classifier_activation: Activation of the classifier ("softmax", or
            None for logits).
        include_preprocessing: True: the model takes images in [0, 255] and
            normalizes them inside. False: the caller normalizes.
        normalization: The (mean, std) the model applies to [0, 255] input:
            a name of `preprocessing.NORMALIZATIONS` or a pair. A converted
            weight file's sidecar overrides it with its own constants. A named
            normalization on an input without 3 channels uses the mean of its
            per-channel constants for every channel.
        skip_mismatch: Load every weight but those whose shape differs (a
            classifier for another number of classes), which stay random.
        remat: Trade compute for memory in training: each block's branch
            becomes a nested model (``block2a``...) that Keras rematerializes,
            recomputing its activations in the backward pass instead of
            storing them. Same outputs and gradients. Block layers are then
            reached through their block, e.g.
            ``model.get_layer("block2a").get_layer("block2a_expand_conv")``;
            build without remat (and copy the weights) for `fold_batch_norm`.
            A saved remat model reloads without this package and computes the
            same, but trains without remat.
        dtype: The dtype policy of the model's layers (keras-hub's convention),
            e.g. "mixed_float16" or "bfloat16"; None for Keras's global policy.
            Under a mixed policy the classifier computes in float32.
        name: Model name.
        round_limit: Channel rounding adds a divisor when the rounded width is
            below this share of the scaled one: 0.9 as EfficientNet (V1), 0 as
            EfficientNetV2 (`scaling.round_filters`).
        stem_filters: The stem's width before scaling; None makes the first
            stage's input_filters (EdgeTPU's stem makes 32 for stages that
            expand from 24).
        condconv_experts: Experts of each convolution of the CondConv stages
            (``BlockArgs(condconv=True)``, ``_cc`` in block strings).
        sync_batch_norm: Synchronize the BatchNorm statistics across the
            replicas of a ``tf.distribute`` strategy (Keras's
            ``BatchNormalization(synchronized=True)``; TensorFlow backend only):
            each step normalizes with the global batch's mean and variance, as
            one device would, instead of each replica's few images. Same layer
            names and weights as without it.
        features_only: Build a backbone: the model returns a dict of feature
            maps, ``{"P1": ..., "P5": ...}``, level k being the last block's
            output at reduction 2^k (`features.feature_extractor`). The top is
            left out whatever `include_top` says; `pooling` must be None.
        out_indices: With features_only, the levels to return as timm's
            positions, 0 for P1 to 4 for P5; None for all.
        p5: With features_only, the deepest level's map: "block" (the last
            block's output) or "head" (the 1x1 head convolution after it,
            ``top_activation``).
        padding: How strided convolutions pad: "same" (TensorFlow's, which
            puts an odd pixel of padding after the image; the official
            networks') or "symmetric" (half before, half after, as PyTorch
            and timm's own weights; a ``ZeroPadding2D`` before each strided
            convolution). Stride-1 convolutions pad the same either way.
        output_stride: None for the stages' own strides, or 32, 16 or 8: the
            deepest map's reduction, for dense prediction (DeepLab). The first
            block that would pass it runs at stride 1 and the blocks after it
            dilate their kernels instead (timm's rule, `scaling.dilate`): the
            same weights, larger late maps, more FLOPs (`count_flops`). The
            feature levels keep their names (`feature_extractor`).

    Returns:
        A functional `keras.Model`.

    Example:
        >>> from keras_efficientnets import EfficientNet, BlockArgs
        >>> stages = [BlockArgs(32, 16, kernel_size=3, strides=1, num_repeat=1,
        ...                     se_ratio=0.25, expand_ratio=1),
        ...           BlockArgs(16, 24, kernel_size=3, strides=2, num_repeat=2,
        ...                     se_ratio=0.25, expand_ratio=6)]
        >>> model = EfficientNet((64, 64, 3), stages, 1.0, 1.0, classes=10)
        >>> model.output_shape
        (None, 10)
    """
    # The signature is the one list of the build arguments, explicit for users' tools: all but
    # _NOT_BUILD_CONFIG are BuildConfig's fields (tests/test_models_builder.py holds them equal).
    arguments = dict(locals())
    arguments["input_shape"] = _input_shape_or_tensor_shape(input_shape, input_tensor)
    config = BuildConfig(**{name: arguments[name] for name in arguments.keys() - set(_NOT_BUILD_CONFIG)})
    return build(config, weights=weights, input_tensor=input_tensor, skip_mismatch=skip_mismatch)


def _input_shape_or_tensor_shape(input_shape, input_tensor):
    if input_tensor is None:
        return input_shape
    if not (keras.backend.is_keras_tensor(input_tensor) or keras.ops.is_tensor(input_tensor)):
        raise TypeError(
            "`input_tensor` must be a Keras tensor such as keras.Input((224, 224, 3)), or a backend "
            f"tensor. {received('input_tensor', input_tensor)}"
        )
    return tuple(input_tensor.shape)[1:] if input_shape is None else input_shape


def build(config: BuildConfig, *, weights=None, input_tensor=None, skip_mismatch=False, variant=None):
    """The model of `config`, with `weights` loaded (see `EfficientNet` for the arguments).

    Args:
        config: A `BuildConfig`.
        weights: None, ``"imagenet"`` (named variants only), a path, or a
            `WeightsChoice` (`weights.resolve_weights`).
        input_tensor: Optional tensor to build on.
        skip_mismatch: Leave layers whose weights differ in shape as initialised.
        variant: Key of `config.VARIANTS` for ``weights="imagenet"``.

    Example:
        >>> from keras_efficientnets.arch.variants import get_default_block_list
        >>> build(BuildConfig(get_default_block_list(), 1.0, 1.0, (64, 64, 3))).count_params()
        5330564
    """
    skip_mismatch = check_bool("skip_mismatch", skip_mismatch)
    choice = weights_lib.resolve_weights(
        weights, variant, config.include_top, config.classes, skip_mismatch=skip_mismatch
    )
    if choice is not None and choice.build_options:
        # The network the weights were trained as (timm's own: PyTorch padding and epsilon).
        config = dataclasses.replace(config, **choice.build_options)
    normalization = (choice and choice.normalization) or config.normalization
    model = _graph(config, normalization, input_tensor)
    if choice is not None and config.remat:
        plain = build(
            dataclasses.replace(config, remat=False, features_only=False, out_indices=None, p5="block"),
            weights=choice,
            skip_mismatch=skip_mismatch,
            variant=variant,
        )
        copy_weights_from_twin(plain, model)
    elif choice is not None:
        weights_lib.load_weights_into(
            model,
            choice,
            variant,
            config.include_top,
            skip_mismatch=skip_mismatch,
            plan=config.plan,
            depthwise_name=config.depthwise_name,
        )
    if config.features_only:
        return feature_extractor(model, config.feature_levels, config.p5, name=config.name)
    return model


# Expansion, depthwise, squeeze-excite and projection, with their BatchNorms and activations;
# CondConv's experts add a few each.
_MAX_LAYERS_PER_BLOCK = 30


def _graph(config: BuildConfig, normalization, input_tensor) -> keras.Model:
    """Input, normalization, stem, blocks, head and top, in that order."""
    builder = GraphBuilder(
        data_format=config.data_format,
        activation=config.activation,
        momentum=config.batch_norm_momentum,
        epsilon=config.batch_norm_epsilon,
        dtype=config.dtype,
        depthwise_name=config.depthwise_name,
        synchronized=config.sync_batch_norm,
        padding=config.padding,
    )
    plan = config.plan
    inputs, x = builder.inputs(config.input_shape, input_tensor)
    if config.include_preprocessing:
        x = builder.normalize(x, *resolve_normalization(normalization, channels=config.channels))
    x = builder.conv_bn_act(x, plan.stem_filters, 3, strides=STEM_STRIDE, prefix="stem")
    for block in plan.blocks:
        x = builder.block(x, block, rematerialize=config.remat)
    x = builder.conv_bn_act(x, plan.head_filters, 1, strides=1, prefix="top")
    x = builder.top(
        x,
        config.include_top,
        config.pooling,
        config.classes,
        config.dropout_rate,
        config.classifier_activation,
    )
    with room_for_graph_walk(_MAX_LAYERS_PER_BLOCK * len(plan.blocks)):
        return keras.Model(inputs, x, name=config.name)


# ---------------------------------------------------------------------------
# The named variants, generated from config.VARIANTS.

# What a named constructor lets its caller change besides its positional
# arguments; the rest (stages, scaling, rounding) is the variant.
_VARIANT_KEYWORDS = frozenset(
    {
        "activation",
        "batch_norm_epsilon",
        "batch_norm_momentum",
        "classifier_activation",
        "dtype",
        "features_only",
        "fix_stem_and_head",
        "include_preprocessing",
        "name",
        "normalization",
        "out_indices",
        "p5",
        "output_stride",
        "padding",
        "remat",
        "skip_mismatch",
        "sync_batch_norm",
        "use_se",
    }
)

_VARIANT_DOC = """{constructor}: {resolution}x{resolution} input, width x{width}, depth x{depth}.

    {family}

    Args:
        input_shape: Defaults to ({resolution}, {resolution}, 3) with the
            classifier and (None, None, 3) without; any size >= 32 works, and
            spatial sizes may be None.
        include_top: Whether to end with global pooling and the classifier.
        weights: "imagenet", None (random) or the path of a weights file.
        input_tensor: Optional tensor to build on.
        pooling: Without the top: None, "avg" or "max".
        classes: Number of classes (1000 with ImageNet weights and the top).
        dropout_rate: Dropout before the classifier.
        drop_connect_rate: Drop-connect rate of the last block.
        data_format: "channels_last", "channels_first" or None.
        **kwargs: The keyword-only options of `EfficientNet`: {keywords}.

    Returns:
        A `keras.Model` that takes RGB in [0, 255] (unless
        include_preprocessing=False).

    Example:
        >>> model = {constructor}(weights=None)
        >>> model.input_shape
        (None, {resolution}, {resolution}, 3)
"""


def _variant_constructor(variant: Variant):
    def constructor(
        input_shape=None,
        include_top=True,
        weights="imagenet",
        input_tensor=None,
        pooling=None,
        classes=1000,
        dropout_rate=variant.dropout_rate,
        drop_connect_rate=0.2,
        data_format=None,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - _VARIANT_KEYWORDS)
        if unknown:
            raise TypeError(
                f"{variant.constructor_name}() got unexpected keyword arguments {unknown}. "
                f"Valid keyword-only options: {sorted(_VARIANT_KEYWORDS)}"
            )
        skip_mismatch = kwargs.pop("skip_mismatch", False)
        config = BuildConfig(
            input_shape=_input_shape_or_tensor_shape(input_shape, input_tensor),
            include_top=include_top,
            pooling=pooling,
            classes=classes,
            dropout_rate=dropout_rate,
            drop_connect_rate=drop_connect_rate,
            data_format=data_format,
            **{**variant.builder_options(), **kwargs},
        )
        return build(
            config,
            weights=weights,
            input_tensor=input_tensor,
            skip_mismatch=skip_mismatch,
            variant=variant.name,
        )

    constructor.__name__ = constructor.__qualname__ = variant.constructor_name
    constructor.__doc__ = _VARIANT_DOC.format(
        resolution=variant.resolution,
        width=variant.width_coefficient,
        depth=variant.depth_coefficient,
        family=FAMILIES[variant.family].summary,
        constructor=variant.constructor_name,
        keywords=", ".join(sorted(_VARIANT_KEYWORDS)),
    )
    return constructor


globals().update({v.constructor_name: _variant_constructor(v) for v in VARIANTS.values()})
