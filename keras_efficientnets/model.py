"""The EfficientNet builder and the named variants B0-B8, L2 and Lite0-Lite4.

The graph uses only Keras's built-in layers, so a saved `.keras` model loads,
converts and serves without this package. Layer names follow
keras.applications (``stem_conv``, ``block2a_expand_conv``, ``top_conv``...):
they are the contract with the published weight files.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import keras
import numpy as np
from keras import layers

from keras_efficientnets import weights as weights_lib
from keras_efficientnets.config import VARIANTS, BlockArgs, get_default_block_list
from keras_efficientnets.preprocessing import resolve_normalization
from keras_efficientnets.scaling import BlockPlan, plan_model

__all__ = ["EfficientNet"] + [variant.constructor_name for variant in VARIANTS.values()]

MIN_INPUT_SIZE = 32

# He-style initialisation over fan-out, as the reference code does
# (tensorflow/tpu efficientnet_model.py conv_kernel_initializer / dense_kernel_initializer).
CONV_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_KERNEL_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}


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
    name: str = "efficientnet",
) -> keras.Model:
    """Builds an EfficientNet from a list of stages.

    Args:
        input_shape: Image shape without the batch axis, e.g. ``(224, 224, 3)``
            (``(3, 224, 224)`` for channels_first); None for
            ``(default_size, default_size, 3)``, or any size if `default_size`
            is None too. Spatial sizes may be None; static ones must be >= 32.
        block_args_list: The stages, as `BlockArgs` (e.g.
            `config.get_default_block_list()`). Not modified.
        width_coefficient: Channel multiplier.
        depth_coefficient: Block-count multiplier.
        include_top: Whether to end with global pooling and the classifier.
        weights: None (random), or the path of a ``.keras`` / ``.weights.h5``
            file saved from a model with the same configuration, a converted
            ``.weights.h5`` (its ``.weights.json`` sidecar sets the
            normalization), or a legacy keras.applications ``.h5`` file.
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
        default_size: Resolution used when `input_shape` is None.
        activation: Activation of every block ("swish"; Lite uses "relu6").
        use_se: False drops squeeze-excite from every block.
        fix_stem_and_head: EfficientNet-Lite: stem 32 and head 1280 channels
            unscaled, and one block in the first and last stage.
        classifier_activation: Activation of the classifier ("softmax", or
            None for logits).
        include_preprocessing: True: the model takes RGB in [0, 255] and
            normalizes it inside. False: the caller normalizes.
        normalization: The (mean, std) the model applies to [0, 255] input:
            a name of `preprocessing.NORMALIZATIONS` or a pair. A converted
            weight file's sidecar overrides it with its own constants.
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
        name: Model name.

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
    return _build(**locals(), variant=None)


def _build(*, variant, **kwargs) -> keras.Model:
    """Validates the arguments, builds the graph and loads the weights."""
    args = _validated(variant=variant, **kwargs)
    weights = args["weights"]
    normalization = weights_lib.normalization_for_weights(weights, variant) or args["normalization"]
    plan = plan_model(
        args["block_args_list"],
        args["width_coefficient"],
        args["depth_coefficient"],
        drop_connect_rate=args["drop_connect_rate"],
        depth_divisor=args["depth_divisor"],
        min_depth=args["min_depth"],
        fix_stem_and_head=args["fix_stem_and_head"],
        use_se=args["use_se"],
    )
    builder = _GraphBuilder(
        data_format=args["data_format"],
        activation=args["activation"],
        momentum=args["batch_norm_momentum"],
        epsilon=args["batch_norm_epsilon"],
    )
    inputs, x = builder.inputs(args["input_shape"], args["input_tensor"])
    if args["include_preprocessing"]:
        x = builder.normalize(x, normalization)
    x = builder.conv_bn_act(x, plan.stem_filters, 3, strides=2, prefix="stem")
    for block in plan.blocks:
        x = builder.mbconv(x, block, remat=args["remat"])
    x = builder.conv_bn_act(x, plan.head_filters, 1, strides=1, prefix="top")
    x = builder.top(
        x,
        args["include_top"],
        args["pooling"],
        args["classes"],
        args["dropout_rate"],
        args["classifier_activation"],
    )
    model = keras.Model(inputs, x, name=args["name"])
    if args["remat"] and weights is not None:
        # The loaders match top-level layer names; load into the plain twin and copy across.
        plain = _build(
            variant=variant,
            **{**kwargs, "remat": False, "input_tensor": None, "input_shape": args["input_shape"]},
        )
        for layer in _leaf_layers(model):
            if layer.weights:
                layer.set_weights(plain.get_layer(layer.name).get_weights())
        return model
    weights_lib.load_weights_into(
        model, weights, variant, args["include_top"], skip_mismatch=args["skip_mismatch"]
    )
    return model


def _leaf_layers(model):
    """Every layer of `model`, with nested models replaced by their own layers."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


class _GraphBuilder:
    """Adds the layers of one model; holds the settings every layer shares."""

    def __init__(self, data_format, activation, momentum, epsilon):
        self.data_format = data_format
        self.channel_axis = -1 if data_format == "channels_last" else 1
        self.activation = activation
        self.momentum = momentum
        self.epsilon = epsilon

    def inputs(self, input_shape, input_tensor):
        if input_tensor is None:
            image = layers.Input(shape=input_shape)
            return image, image
        if not keras.backend.is_keras_tensor(input_tensor):
            image = layers.Input(tensor=input_tensor, shape=input_shape)
            return image, image
        return keras.utils.get_source_inputs(input_tensor), input_tensor

    def normalize(self, x, normalization):
        # A Rescaling layer computes (x - mean) / std with constants in its
        # config, so it adds no weights and loads without this package.
        mean, std = resolve_normalization(normalization)
        per_channel = max(mean.size, std.size)
        if per_channel == 1:
            return layers.Rescaling(scale=float(1.0 / std), offset=float(-mean / std), name="preprocessing")(
                x
            )
        channels = x.shape[self.channel_axis]
        if channels != per_channel:
            raise ValueError(
                f"The normalization has constants for {per_channel} channels, but the input "
                f"has {channels}. Pass include_preprocessing=False, or a normalization with "
                f"scalar or {channels} constants. Received: normalization={normalization!r}"
            )
        # Shaped to broadcast over the channel axis whatever the global data format.
        broadcast = (1, 1, -1) if self.data_format == "channels_last" else (-1, 1, 1)
        scale = np.broadcast_to(1.0 / std, (per_channel,)).reshape(broadcast)
        offset = np.broadcast_to(-mean / std, (per_channel,)).reshape(broadcast)
        return layers.Rescaling(scale=scale.tolist(), offset=offset.tolist(), name="preprocessing")(x)

    def batch_norm(self, x, name):
        return layers.BatchNormalization(
            axis=self.channel_axis, momentum=self.momentum, epsilon=self.epsilon, name=name
        )(x)

    def conv(self, x, filters, kernel_size, strides, name, use_bias=False, activation=None):
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=use_bias,
            activation=activation,
            data_format=self.data_format,
            kernel_initializer=CONV_KERNEL_INITIALIZER,
            name=name,
        )(x)

    def conv_bn_act(self, x, filters, kernel_size, strides, prefix):
        """The stem (``stem_conv``, ``stem_bn``...) and the head (``top_conv``...)."""
        x = self.conv(x, filters, kernel_size, strides, name=f"{prefix}_conv")
        x = self.batch_norm(x, name=f"{prefix}_bn")
        return layers.Activation(self.activation, name=f"{prefix}_activation")(x)

    def mbconv(self, inputs, block: BlockPlan, remat: bool = False):
        """One inverted-bottleneck block (MBConv) with optional squeeze-excite."""
        x = self.remat_branch(inputs, block) if remat else self.branch(inputs, block)
        if block.has_residual:
            if block.drop_rate > 0:
                # Drop connect: drop the whole residual branch per sample.
                x = layers.Dropout(block.drop_rate, noise_shape=(None, 1, 1, 1), name=f"{block.name}drop")(x)
            x = layers.Add(name=f"{block.name}add")([x, inputs])
        return x

    def remat_branch(self, inputs, block: BlockPlan):
        """The block's branch as a nested functional model that Keras rematerializes.

        Only the block's input is kept for the backward pass; the expanded
        activations inside (6x wider) are recomputed. The nested model is named
        after the block (``block2a``) and holds the usual layers
        (``block2a_expand_conv``...), so `model.get_layer` finds the blocks, and
        a saved model is still made of built-in Keras layers only. Drop connect
        and the residual add stay outside: a recomputed Dropout would draw a
        different mask from the forward pass.
        """
        branch_input = layers.Input(shape=inputs.shape[1:], name=f"{block.name}input")
        branch_output = self.branch(branch_input, block)
        # Only the nested model is created in the scope: its layers must not be
        # rematerialized one by one as well.
        with keras.RematScope(mode="full"):
            branch = keras.Model(branch_input, branch_output, name=block.name.rstrip("_"))
        branch.rematerialized_call = _remat_with_bound_keywords
        return branch(inputs)

    def branch(self, inputs, block: BlockPlan):
        """Expansion, depthwise, squeeze-excite and projection: the block without its residual."""
        args, name = block.args, block.name
        x = inputs

        # Expansion: widen the channels with a 1x1 conv.
        if args.expand_ratio != 1:
            x = self.conv(x, block.expanded_filters, 1, 1, name=f"{name}expand_conv")
            x = self.batch_norm(x, name=f"{name}expand_bn")
            x = layers.Activation(self.activation, name=f"{name}expand_activation")(x)

        # Depthwise: spatial filtering per channel, with the block's stride.
        x = layers.DepthwiseConv2D(
            args.kernel_size,
            strides=args.strides,
            padding="same",
            use_bias=False,
            data_format=self.data_format,
            depthwise_initializer=CONV_KERNEL_INITIALIZER,
            name=f"{name}dwconv",
        )(x)
        x = self.batch_norm(x, name=f"{name}bn")
        x = layers.Activation(self.activation, name=f"{name}activation")(x)

        # Squeeze-excite: reweight channels by a gate computed from their means.
        if args.has_se:
            se = layers.GlobalAveragePooling2D(
                data_format=self.data_format, keepdims=True, name=f"{name}se_squeeze"
            )(x)
            se = self.conv(
                se, block.se_filters, 1, 1, name=f"{name}se_reduce", use_bias=True, activation=self.activation
            )
            se = self.conv(
                se, block.expanded_filters, 1, 1, name=f"{name}se_expand", use_bias=True, activation="sigmoid"
            )
            x = layers.Multiply(name=f"{name}se_excite")([x, se])

        # Projection: back to few channels, linear (no activation).
        x = self.conv(x, args.output_filters, 1, 1, name=f"{name}project_conv")
        return self.batch_norm(x, name=f"{name}project_bn")

    def top(self, x, include_top, pooling, classes, dropout_rate, classifier_activation):
        if include_top:
            x = layers.GlobalAveragePooling2D(data_format=self.data_format, name="avg_pool")(x)
            if dropout_rate > 0:
                x = layers.Dropout(dropout_rate, name="top_dropout")(x)
            # Under mixed precision the classifier computes in float32, so the
            # probabilities are float32 and finite.
            return layers.Dense(
                classes,
                activation=classifier_activation,
                kernel_initializer=DENSE_KERNEL_INITIALIZER,
                dtype=_classifier_dtype(),
                name="predictions",
            )(x)
        if pooling == "avg":
            return layers.GlobalAveragePooling2D(data_format=self.data_format, name="avg_pool")(x)
        if pooling == "max":
            return layers.GlobalMaxPooling2D(data_format=self.data_format, name="max_pool")(x)
        return x


def _remat_with_bound_keywords(call, *args, **kwargs):
    """`keras.remat` of a nested model's call, with its keyword arguments bound in a closure.

    Keras's own `RematScope(mode="full")` hands ``training=...`` to
    `keras.remat` as a keyword, which TensorFlow's graph-mode
    ``recompute_grad`` rejects and JAX's ``checkpoint`` turns into a traced
    value that BatchNormalization cannot branch on. Only tensors go through.

    Variable updates (BatchNormalization's moving statistics) are collected
    inside the rematerialized function and returned as outputs, then assigned
    outside it: once per step, although the backward pass runs the function
    again, and without a JAX tracer escaping ``checkpoint``.
    """

    def rematerialized(*call_args, **call_kwargs):
        variables = call.__self__.non_trainable_variables

        def run(*tensors):
            with _UpdateCollector() as collector:
                outputs = call(*tensors, **call_kwargs)
            return outputs, collector.updates(variables)

        outputs, updates = keras.remat(run)(*call_args)
        for variable in variables:
            if id(variable) in updates:
                variable.assign(updates[id(variable)])
        return outputs

    return rematerialized


class _UpdateCollector(keras.StatelessScope):
    """A StatelessScope that reads variables through the scope around it, if any.

    JAX's training step runs the whole model in a StatelessScope of traced
    values; a block must read those, not the variables' stored values.
    """

    def get_current_value(self, variable):
        value = super().get_current_value(variable)
        if value is None and self.original_scope is not None:
            return self.original_scope.get_current_value(variable)
        return value

    def updates(self, variables) -> dict:
        """The values assigned in this scope, by variable id."""
        return {id(v): self.state_mapping[id(v)] for v in variables if id(v) in self.state_mapping}


def _classifier_dtype():
    policy = keras.config.dtype_policy()
    return "float32" if policy.name.startswith("mixed_") else None


# ---------------------------------------------------------------------------
# Argument validation: every message names the argument and the received value.


def _check_int(name, value, minimum):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _check_real(name, value, low, high, low_open=False, high_open=False):
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"`{name}` must be a number in {interval}. Received: {name}={value!r}")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")


def _check_block_args_list(block_args_list):
    if isinstance(block_args_list, (str, bytes)) or not hasattr(block_args_list, "__iter__"):
        raise TypeError(
            "`block_args_list` must be a list of BlockArgs, e.g. get_default_block_list(). "
            f"Received: block_args_list={block_args_list!r}"
        )
    stages = list(block_args_list)
    if not stages or not all(isinstance(stage, BlockArgs) for stage in stages):
        raise TypeError(
            "`block_args_list` must be a non-empty list of BlockArgs "
            "(BlockArgs.from_block_string turns a block string into one). "
            f"Received: block_args_list={block_args_list!r}"
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


def _resolve_input_shape(input_shape, input_tensor, default_size, data_format):
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape)[1:]
    if input_shape is None:
        size = default_size
        input_shape = (size, size, 3) if data_format == "channels_last" else (3, size, size)
    try:
        input_shape = tuple(None if dim is None else int(dim) for dim in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            "`input_shape` must be a tuple of 3 dimensions such as (224, 224, 3). "
            f"Received: input_shape={input_shape!r}"
        ) from None
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must have 3 dimensions (height, width, channels), without the batch. "
            f"Received: input_shape={input_shape!r}"
        )
    spatial = input_shape[:2] if data_format == "channels_last" else input_shape[1:]
    channels = input_shape[2] if data_format == "channels_last" else input_shape[0]
    if any(dim is not None and dim < MIN_INPUT_SIZE for dim in spatial):
        raise ValueError(
            f"Input images must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} pixels. "
            f"Received: input_shape={input_shape!r}"
        )
    if channels is None or channels < 1:
        raise ValueError(
            f"`input_shape` needs a known, positive number of channels ({data_format}). "
            f"Received: input_shape={input_shape!r}"
        )
    return input_shape


def _validated(
    *,
    variant,
    input_shape,
    block_args_list,
    width_coefficient,
    depth_coefficient,
    include_top,
    weights,
    input_tensor,
    pooling,
    classes,
    dropout_rate,
    drop_connect_rate,
    batch_norm_momentum,
    batch_norm_epsilon,
    depth_divisor,
    min_depth,
    data_format,
    default_size,
    activation,
    use_se,
    fix_stem_and_head,
    classifier_activation,
    include_preprocessing,
    normalization,
    skip_mismatch,
    remat,
    name,
) -> dict:
    """Checks every argument and fills in the defaults that depend on others."""
    block_args_list = _check_block_args_list(block_args_list)
    _check_real("width_coefficient", width_coefficient, 0, math.inf, low_open=True, high_open=True)
    _check_real("depth_coefficient", depth_coefficient, 0, math.inf, low_open=True, high_open=True)
    _check_bool("include_top", include_top)
    _check_bool("use_se", use_se)
    _check_bool("fix_stem_and_head", fix_stem_and_head)
    _check_bool("include_preprocessing", include_preprocessing)
    if pooling not in (None, "avg", "max"):
        raise ValueError(f'`pooling` must be None, "avg" or "max". Received: pooling={pooling!r}')
    _check_int("classes", classes, 1)
    _check_real("dropout_rate", dropout_rate, 0, 1, high_open=True)
    _check_real("drop_connect_rate", drop_connect_rate, 0, 1, high_open=True)
    _check_real("batch_norm_momentum", batch_norm_momentum, 0, 1)
    _check_real("batch_norm_epsilon", batch_norm_epsilon, 0, math.inf, low_open=True, high_open=True)
    _check_int("depth_divisor", depth_divisor, 1)
    if min_depth is not None:
        _check_int("min_depth", min_depth, 1)
    if default_size is not None:
        _check_int("default_size", default_size, MIN_INPUT_SIZE)
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            '`data_format` must be None, "channels_last" or "channels_first". '
            f"Received: data_format={data_format!r}"
        )
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty str. Received: name={name!r}")
    _check_bool("skip_mismatch", skip_mismatch)
    _check_bool("remat", remat)
    weights_lib.validate_weights_argument(weights, variant, include_top, classes, skip_mismatch=skip_mismatch)
    input_shape = _resolve_input_shape(input_shape, input_tensor, default_size, data_format)
    return dict(locals())


# ---------------------------------------------------------------------------
# The named variants, generated from config.VARIANTS.

_VARIANT_DOC = """EfficientNet-{label}: {resolution}x{resolution} input, width x{width}, depth x{depth}.

    {family}

    Args:
        input_shape: Defaults to ({resolution}, {resolution}, 3); any size >= 32
            works, and spatial sizes may be None.
        include_top: Whether to end with global pooling and the classifier.
        weights: "imagenet", None (random) or the path of a weights file.
        input_tensor: Optional tensor to build on.
        pooling: Without the top: None, "avg" or "max".
        classes: Number of classes (1000 with ImageNet weights and the top).
        dropout_rate: Dropout before the classifier.
        drop_connect_rate: Drop-connect rate of the last block.
        data_format: "channels_last", "channels_first" or None.
        **kwargs: The keyword-only options of `EfficientNet` (activation,
            use_se, classifier_activation, include_preprocessing, name...).

    Returns:
        A `keras.Model` that takes RGB in [0, 255] (unless
        include_preprocessing=False).

    Example:
        >>> model = {constructor}(weights=None)
        >>> model.input_shape
        (None, {resolution}, {resolution}, 3)
"""


def _variant_constructor(key: str):
    variant = VARIANTS[key]
    family_options = variant.family_options

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
        keyword_only = {
            **family_options,
            "classifier_activation": "softmax",
            "include_preprocessing": True,
            "name": f"efficientnet{key}",
            "batch_norm_momentum": 0.99,
            "batch_norm_epsilon": 1e-3,
            "skip_mismatch": False,
            "remat": False,
        }
        unknown = sorted(set(kwargs) - set(keyword_only))
        if unknown:
            raise TypeError(
                f"{variant.constructor_name}() got unexpected keyword arguments {unknown}. "
                f"Valid keyword-only options: {sorted(keyword_only)}"
            )
        keyword_only.update(kwargs)
        return _build(
            variant=key,
            input_shape=input_shape,
            block_args_list=get_default_block_list(),
            width_coefficient=variant.width_coefficient,
            depth_coefficient=variant.depth_coefficient,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            pooling=pooling,
            classes=classes,
            dropout_rate=dropout_rate,
            drop_connect_rate=drop_connect_rate,
            depth_divisor=8,
            min_depth=None,
            data_format=data_format,
            default_size=variant.resolution,
            **keyword_only,
        )

    family = (
        "EfficientNet-Lite: relu6, no squeeze-excite, fixed stem and head; "
        "ImageNet weights expect (x - 127) / 128, applied inside the model."
        if variant.lite
        else "ImageNet weights expect the ImageNet mean and std, applied inside the model."
    )
    constructor.__name__ = constructor.__qualname__ = variant.constructor_name
    constructor.__doc__ = _VARIANT_DOC.format(
        label=variant.name.upper() if not variant.lite else f"Lite{variant.name[4:]}",
        resolution=variant.resolution,
        width=variant.width_coefficient,
        depth=variant.depth_coefficient,
        family=family,
        constructor=variant.constructor_name,
    )
    return constructor


EfficientNetB0 = _variant_constructor("b0")
EfficientNetB1 = _variant_constructor("b1")
EfficientNetB2 = _variant_constructor("b2")
EfficientNetB3 = _variant_constructor("b3")
EfficientNetB4 = _variant_constructor("b4")
EfficientNetB5 = _variant_constructor("b5")
EfficientNetB6 = _variant_constructor("b6")
EfficientNetB7 = _variant_constructor("b7")
EfficientNetB8 = _variant_constructor("b8")
EfficientNetL2 = _variant_constructor("l2")
EfficientNetLite0 = _variant_constructor("lite0")
EfficientNetLite1 = _variant_constructor("lite1")
EfficientNetLite2 = _variant_constructor("lite2")
EfficientNetLite3 = _variant_constructor("lite3")
EfficientNetLite4 = _variant_constructor("lite4")
