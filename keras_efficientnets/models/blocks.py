"""The layers of an EfficientNet: input and its normalization, stem, blocks, head, top.

Block kinds: MBConv (with squeeze-excite, or CondConv mixtures) and fused MBConv.

Only Keras's built-in layers, so that a saved model loads, converts and serves
without this package. Layer names follow keras.applications (``stem_conv``,
``block2a_expand_conv``, ``top_conv``...): they are the contract with the
published weight files.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_efficientnets.arch import layer_names
from keras_efficientnets.arch.scaling import BlockPlan
from keras_efficientnets.models import remat

__all__ = ["CONV_KERNEL_INITIALIZER", "DENSE_KERNEL_INITIALIZER", "GraphBuilder"]

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


class GraphBuilder:
    """Adds the layers of one model; holds the settings every layer shares.

    Args:
        data_format: "channels_last" or "channels_first".
        activation: Activation of the stem, blocks and head.
        momentum, epsilon: BatchNormalization settings.
        dtype: The layers' dtype policy; None for Keras's global one.
        depthwise_name: Name of the depthwise layer in a block (keras.applications'
            V2 files call it ``dwconv2``, its V1 files ``dwconv``).
        synchronized: BatchNorm statistics over every replica of a tf.distribute strategy.
        padding: "same" (TensorFlow's) or "symmetric" (PyTorch's: strided convolutions
            get a ``ZeroPadding2D`` of k // 2 on every side, named ``{conv}_pad``).
    """

    def __init__(
        self,
        data_format,
        activation,
        momentum,
        epsilon,
        dtype=None,
        depthwise_name="dwconv",
        synchronized=False,
        padding="same",
    ):
        self.data_format = data_format
        self.channel_axis = -1 if data_format == "channels_last" else 1
        self.activation = activation
        self.momentum = momentum
        self.epsilon = epsilon
        self.dtype = dtype
        self.depthwise_name = depthwise_name
        self.synchronized = synchronized
        self.padding = padding

    def inputs(self, input_shape, input_tensor):
        """The model's input and the tensor the graph starts from."""
        # Named, not numbered by Keras's per-process counter, so that saved files are
        # the same bytes whatever was built before.
        if input_tensor is None:
            image = layers.Input(shape=input_shape, name="input_layer")
            return image, image
        if not keras.backend.is_keras_tensor(input_tensor):
            image = layers.Input(tensor=input_tensor, shape=input_shape, name="input_layer")
            return image, image
        return keras.utils.get_source_inputs(input_tensor), input_tensor

    def normalize(self, x, mean: np.ndarray, std: np.ndarray):
        """(x - mean) / std, as a weightless Rescaling layer (constants in its config).

        `mean` and `std` are scalars or one per input channel
        (`preprocessing.resolve_normalization` with the channel count).
        """
        if max(mean.size, std.size) == 1:
            scale, offset = float(1.0 / std), float(-mean / std)
        else:
            # Shaped to broadcast over the channel axis whatever the global data format.
            channels = max(mean.size, std.size)
            broadcast = (1, 1, -1) if self.data_format == "channels_last" else (-1, 1, 1)
            scale = np.broadcast_to(1.0 / std, (channels,)).reshape(broadcast).tolist()
            offset = np.broadcast_to(-mean / std, (channels,)).reshape(broadcast).tolist()
        return layers.Rescaling(scale=scale, offset=offset, dtype=self.dtype, name="preprocessing")(x)

    def batch_norm(self, x, name):
        return layers.BatchNormalization(
            axis=self.channel_axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            synchronized=self.synchronized,
            dtype=self.dtype,
            name=name,
        )(x)

    def pad(self, x, kernel_size, strides, name):
        """`x` padded for a convolution, and the Keras padding that convolution then takes.

        TensorFlow's "same" puts the odd pixel of a strided convolution's padding after the
        image, PyTorch's symmetric padding k // 2 on both sides; at stride 1 (and for 1x1
        kernels) the two pad alike, dilated or not, so only strided convolutions get an
        explicit pad.
        """
        if self.padding == "same" or kernel_size == 1 or strides in (1, (1, 1)):
            return x, "same"
        padded = layers.ZeroPadding2D(
            kernel_size // 2, data_format=self.data_format, dtype=self.dtype, name=f"{name}_pad"
        )(x)
        return padded, "valid"

    def conv(
        self,
        x,
        filters,
        kernel_size,
        strides,
        name,
        use_bias=False,
        activation=None,
        experts=None,
        dilation=1,
    ):
        """A padded Conv2D (`pad`); with `experts` (CondConv routing), a mixture of them."""

        def layer(layer_name, **spatial):
            return layers.Conv2D(
                filters,
                use_bias=use_bias,
                activation=activation,
                kernel_initializer=CONV_KERNEL_INITIALIZER,
                name=layer_name,
                **spatial,
            )

        return self.spatial_layer(x, layer, kernel_size, strides, dilation, name, experts)

    def depthwise(self, x, kernel_size, strides, name, experts=None, dilation=1):
        """A padded DepthwiseConv2D (`pad`); with `experts` (CondConv routing), a mixture of them."""

        def layer(layer_name, **spatial):
            return layers.DepthwiseConv2D(
                use_bias=False, depthwise_initializer=CONV_KERNEL_INITIALIZER, name=layer_name, **spatial
            )

        return self.spatial_layer(x, layer, kernel_size, strides, dilation, name, experts)

    def spatial_layer(self, x, make_layer, kernel_size, strides, dilation, name, experts):
        """`make_layer(layer_name, **options)` applied to `x` padded (`pad`), or a mixture of its experts.

        The options are what a convolution and a depthwise convolution share: kernel, stride,
        padding, dilation, data format and dtype.
        """
        x, padding = self.pad(x, kernel_size, strides, name)
        spatial = dict(
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            dilation_rate=dilation,
            data_format=self.data_format,
            dtype=self.dtype,
        )

        def layer(layer_name):
            return make_layer(layer_name, **spatial)

        return layer(name)(x) if experts is None else self.mixture(x, layer, name, experts)

    def act(self, x, name):
        return layers.Activation(self.activation, dtype=self.dtype, name=name)(x)

    def conv_bn_act(self, x, filters, kernel_size, strides, prefix):
        """The stem (``stem_conv``, ``stem_bn``...) and the head (``top_conv``...)."""
        x = self.conv(x, filters, kernel_size, strides, name=f"{prefix}_conv")
        x = self.batch_norm(x, name=f"{prefix}_bn")
        return self.act(x, name=f"{prefix}_activation")

    def block(self, inputs, block: BlockPlan, rematerialize: bool = False):
        """One block: its branch (MBConv or fused), then drop connect and the residual."""
        if rematerialize:
            x = remat.rematerialized_branch(self.branch, inputs, block)
        else:
            x = self.branch(inputs, block)
        if block.has_residual:
            if block.drop_rate > 0:
                # Drop connect: drop the whole residual branch per sample.
                x = layers.Dropout(
                    block.drop_rate, noise_shape=(None, 1, 1, 1), dtype=self.dtype, name=f"{block.name}drop"
                )(x)
            x = layers.Add(dtype=self.dtype, name=f"{block.name}add")([x, inputs])
        return x

    def branch(self, inputs, block: BlockPlan):
        """The block without its residual."""
        return self.fused_branch(inputs, block) if block.args.fused else self.mbconv_branch(inputs, block)

    def mbconv_branch(self, inputs, block: BlockPlan):
        """Expansion, depthwise, squeeze-excite and projection; CondConv mixes experts in the three convs."""
        args, name = block.args, block.name
        # CondConv: one routing weight per expert and image, from the block's input.
        experts = self.routing(inputs, block) if block.num_experts else None
        x = inputs

        # Expansion: widen the channels with a 1x1 conv.
        if args.expand_ratio != 1:
            x = self.conv(x, block.expanded_filters, 1, 1, name=f"{name}expand_conv", experts=experts)
            x = self.batch_norm(x, name=f"{name}expand_bn")
            x = self.act(x, name=f"{name}expand_activation")

        # Depthwise: spatial filtering per channel, with the block's stride (or dilation).
        x = self.depthwise(
            x,
            args.kernel_size,
            args.strides,
            name=f"{name}{self.depthwise_name}",
            experts=experts,
            dilation=block.dilation,
        )
        x = self.batch_norm(x, name=f"{name}bn")
        x = self.act(x, name=f"{name}activation")
        if args.has_se:
            x = self.squeeze_excite(x, block)

        # Projection: back to few channels, linear (no activation).
        x = self.conv(x, args.output_filters, 1, 1, name=f"{name}project_conv", experts=experts)
        return self.batch_norm(x, name=f"{name}project_bn")

    def fused_branch(self, inputs, block: BlockPlan):
        """Fused MBConv: one k x k conv with the stride replaces expansion and depthwise (EfficientNetV2)."""
        args, name = block.args, block.name

        def spatial_conv(x, filters, layer_name):
            # The block's one k x k convolution, with its stride (or dilation).
            return self.conv(
                x, filters, args.kernel_size, args.strides, name=layer_name, dilation=block.dilation
            )

        x = inputs
        if args.expand_ratio != 1:
            x = spatial_conv(x, block.expanded_filters, f"{name}expand_conv")
            x = self.batch_norm(x, name=f"{name}expand_bn")
            x = self.act(x, name=f"{name}expand_activation")
        if args.has_se:
            x = self.squeeze_excite(x, block)
        if args.expand_ratio != 1:
            x = self.conv(x, args.output_filters, 1, 1, name=f"{name}project_conv")
            return self.batch_norm(x, name=f"{name}project_bn")
        # No expansion: the k x k conv goes straight to the output width, with an activation.
        x = spatial_conv(x, args.output_filters, f"{name}project_conv")
        x = self.batch_norm(x, name=f"{name}project_bn")
        return self.act(x, name=f"{name}project_activation")

    def squeeze_excite(self, x, block: BlockPlan):
        """Reweights the channels by a gate computed from their means."""
        name = block.name
        se = layers.GlobalAveragePooling2D(
            data_format=self.data_format, keepdims=True, dtype=self.dtype, name=f"{name}se_squeeze"
        )(x)
        se = self.conv(
            se, block.se_filters, 1, 1, name=f"{name}se_reduce", use_bias=True, activation=self.activation
        )
        se = self.conv(
            se, x.shape[self.channel_axis], 1, 1, name=f"{name}se_expand", use_bias=True, activation="sigmoid"
        )
        return layers.Multiply(dtype=self.dtype, name=f"{name}se_excite")([x, se])

    def routing(self, inputs, block: BlockPlan) -> list:
        """CondConv's routing: a sigmoid weight per expert and image, from the pooled block input.

        Returned as one (batch, 1, 1, 1) tensor per expert, to scale that expert's output.
        """
        pooled = layers.GlobalAveragePooling2D(
            data_format=self.data_format, dtype=self.dtype, name=f"{block.name}routing_pool"
        )(inputs)
        weights = layers.Dense(
            block.num_experts, activation="sigmoid", dtype=self.dtype, name=f"{block.name}routing"
        )(pooled)
        return [
            layers.Reshape((1, 1, 1), dtype=self.dtype, name=f"{block.name}routing_{e}")(
                weights[:, e : e + 1]
            )
            for e in range(block.num_experts)
        ]

    def mixture(self, x, make_expert, name: str, experts):
        """CondConv: the experts' outputs weighted by their routing and summed.

        Convolution is linear in its kernel, so this equals convolving with the
        routing-weighted mixture of the kernels (the CondConv paper's form), with
        built-in layers only: E experts ``{name}_0`` ... and their sum ``{name}``.
        """
        weighted = [
            layers.Multiply(dtype=self.dtype, name=f"{name}_{e}_weighted")(
                [make_expert(f"{name}_{e}")(x), weight]
            )
            for e, weight in enumerate(experts)
        ]
        return layers.Add(dtype=self.dtype, name=name)(weighted)

    def top(self, x, include_top, pooling, classes, dropout_rate, classifier_activation):
        """The classifier (``avg_pool``, ``top_dropout``, ``predictions``), or the pooling without it."""
        if include_top:
            x = layers.GlobalAveragePooling2D(
                data_format=self.data_format, dtype=self.dtype, name=layer_names.GLOBAL_POOL
            )(x)
            if dropout_rate > 0:
                x = layers.Dropout(dropout_rate, dtype=self.dtype, name=layer_names.CLASSIFIER_DROPOUT)(x)
            return layers.Dense(
                classes,
                activation=classifier_activation,
                kernel_initializer=DENSE_KERNEL_INITIALIZER,
                dtype=self._classifier_dtype(),
                name=layer_names.CLASSIFIER,
            )(x)
        if pooling == "avg":
            return layers.GlobalAveragePooling2D(
                data_format=self.data_format, dtype=self.dtype, name=layer_names.GLOBAL_POOL
            )(x)
        if pooling == "max":
            return layers.GlobalMaxPooling2D(data_format=self.data_format, dtype=self.dtype, name="max_pool")(
                x
            )
        return x

    def _classifier_dtype(self):
        # Under mixed precision the classifier computes in float32, so the
        # probabilities are float32 and finite.
        policy = (
            keras.dtype_policies.get(self.dtype) if self.dtype is not None else keras.config.dtype_policy()
        )
        return "float32" if policy.name.startswith("mixed_") else self.dtype
