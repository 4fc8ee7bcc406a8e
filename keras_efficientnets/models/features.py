"""Backbones: an EfficientNet's multi-scale feature maps as the outputs of a model.

`feature_extractor` reads the levels off a built model's graph, with no help
from its configuration, so it works on any EfficientNet of this package,
including one loaded from a ``.keras`` file: the layers of a block share its
prefix (``block3b_...``, or one nested model ``block3b`` with remat), a block's
last layer is its output, and its strided convolutions give its reduction (in
a dilated model, the dilation gained by the blocks after it gives the stride
it runs without: `feature_levels.stride_given_up`).
`feature_levels.feature_info` computes the same levels from the plan alone;
the tests hold the two to each other for every variant.
"""

from __future__ import annotations

import dataclasses
import re

import keras

from keras_efficientnets._common.validation import check_choice, received
from keras_efficientnets.arch.feature_levels import P5_SOURCES, check_level_names, stride_given_up
from keras_efficientnets.models.graph_depth import room_for_graph_walk
from keras_efficientnets.models.remat import leaf_layers

__all__ = ["GraphLevel", "feature_extractor", "output_in_graph", "pyramid_levels"]

# The stem, each block and the head: the groups of layers that make the pyramid.
_GROUP = re.compile(r"^(stem|top|block\d+[a-z]+)(?:_|$)")


def feature_extractor(model: keras.Model, levels=None, p5: str = "block", name: str | None = None):
    """A model that returns the feature pyramid of an EfficientNet built by this package.

    Level k (keras-hub's ``"Pk"``) is the output of the last block at
    reduction 2^k of the input: ``ceil(H / 2^k) x ceil(W / 2^k)`` maps, P1 to
    P5 for every published variant. A model built with ``output_stride`` 16
    or 8 has the same levels with the deepest at that reduction (P4 and P5
    both at 16 for ``output_stride=16``; `feature_levels.feature_info`).
    The new model shares `model`'s layers and weights: training one trains
    the other.

    Args:
        model: An EfficientNet of this package, with or without its classifier,
            with or without remat.
        levels: The levels to return, as names (``("P3", "P4", "P5")``); None
            for all of them.
        p5: The deepest level's map: "block", the last block's output (320
            channels for B0), or "head", the 1x1 head convolution after it
            (``top_activation``, 1280 channels for B0).
        name: Name of the new model; default ``"<model name>_features"``.

    Returns:
        A functional `keras.Model` with the same input whose output is a dict
        from level name to feature map.

    Example:
        >>> from keras_efficientnets import EfficientNetB0
        >>> backbone = feature_extractor(EfficientNetB0(weights=None, include_top=False))
        >>> backbone.output["P3"].shape
        (None, None, None, 40)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model built by this package. {received('model', model)}")
    p5 = check_choice("p5", p5, P5_SOURCES)
    pyramid = {level: graph_level.layer for level, graph_level in pyramid_levels(model).items()}
    deepest = max(pyramid)
    if p5 == "head":
        pyramid[deepest] = _head_output_layer(model)
    names = {f"P{level}": level for level in pyramid}
    chosen = check_level_names(levels, list(names))
    outputs = {level_name: output_in_graph(pyramid[names[level_name]]) for level_name in chosen}
    with room_for_graph_walk(len(model.layers)):
        return keras.Model(model.input, outputs, name=name or f"{model.name}_features")


@dataclasses.dataclass(frozen=True)
class GraphLevel:
    """Where level k ends in a built model: the layer whose output it is, and the stride of
    that output against the input (2^k, or the output stride of a dilated model if smaller)."""

    layer: keras.layers.Layer
    reduction: int


def pyramid_levels(model) -> dict[int, GraphLevel]:
    """Each level k of `model`'s pyramid, read from the stem and blocks in graph order."""
    groups = _layer_groups(model)
    if "stem" not in groups:
        raise ValueError(
            f"`model` has no `stem_conv` layer: {model.name!r} is not an EfficientNet built by this "
            "package, so its blocks and levels are unknown."
        )
    stages = [_GroupStrides(layers) for group, layers in groups.items() if group != "top"]
    pyramid, reduction, undilated_reduction = {}, 1, 1
    for stage, following in zip(stages, stages[1:] + [None], strict=True):
        reduction *= stage.stride
        undilated_reduction *= stage.stride * stride_given_up(stage, following)
        pyramid[undilated_reduction.bit_length() - 1] = GraphLevel(stage.output_layer, reduction)
    return pyramid


def _layer_groups(model) -> dict[str, list]:
    """The model's top-level layers by group (stem, block, top), in graph order."""
    groups: dict[str, list] = {}
    for layer in model.layers:
        match = _GROUP.match(layer.name)
        if match:
            groups.setdefault(match.group(1), []).append(layer)
    return groups


class _GroupStrides:
    """The stem's or a block's layers: its stride, the dilation of its kernels, its output layer."""

    def __init__(self, layers):
        leaves = [inner for layer in layers for inner in _leaves(layer)]
        self.stride = max((inner.strides[0] for inner in leaves if hasattr(inner, "strides")), default=1)
        self.dilation = max(
            (inner.dilation_rate[0] for inner in leaves if hasattr(inner, "dilation_rate")), default=1
        )
        self.output_layer = layers[-1]  # a group's last layer is its output


def _leaves(layer):
    return leaf_layers(layer) if isinstance(layer, keras.Model) else [layer]


def output_in_graph(layer):
    """The tensor `layer` produced where it was called in the model's graph.

    A nested model's own `output` is the output of its inner graph (a remat
    block's ``block1a`` model); Operation's property is the call's output.
    """
    return keras.Operation.output.fget(layer)


def _head_output_layer(model):
    try:
        return model.get_layer("top_activation")
    except ValueError:
        raise ValueError(
            f"p5='head' needs the head convolution (`top_activation`), which {model.name!r} lacks."
        ) from None
