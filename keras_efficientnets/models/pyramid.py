"""keras-hub's image encoders: an EfficientNet whose feature maps are its ``pyramid_outputs``.

keras-hub's detection and segmentation models (``RetinaNetBackbone``,
``DeepLabV3Backbone``) take an ``image_encoder``: a `keras.Model` with a
``pyramid_outputs`` dict from ``"Pk"`` to the feature map at reduction 2^k.
They pick their levels by those keys and size their upsampling by k, so the
keys must be the maps' true strides. They save the encoder inside their own
config (`keras.layers.serialize`), so it is a registered class. Nothing here
imports keras-hub: `keras_hub_tasks` does, for the one model it helps build.
"""

from __future__ import annotations

import keras

from keras_efficientnets._common.validation import received
from keras_efficientnets.models.features import output_in_graph, pyramid_levels
from keras_efficientnets.models.graph_depth import room_for_graph_walk

__all__ = ["PyramidBackbone", "check_pyramid_key", "pyramid_backbone", "reduction_of_key"]


@keras.saving.register_keras_serializable(package="keras_efficientnets")
class PyramidBackbone(keras.Model):
    """A functional model whose outputs, a dict ``{"P1": ..., "P5": ...}``, are also its
    ``pyramid_outputs``, as keras-hub's image encoders have. Built by `pyramid_backbone`.

    Its ``.keras`` file needs this package to load (the class is registered as
    ``keras_efficientnets>PyramidBackbone``); a plain `feature_extractor` model's does not.
    """

    # Functional's own arguments, so that Keras revives it from its graph (Model.from_config).
    def __init__(self, inputs, outputs, name=None, **kwargs):
        if not isinstance(outputs, dict) or not outputs or not all(_is_pyramid_key(k) for k in outputs):
            shown = list(outputs) if isinstance(outputs, dict) else outputs
            raise ValueError(
                "`outputs` must be a dict from level names 'P1', 'P2', ... to feature maps. "
                f"Received: outputs={shown!r}"
            )
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.pyramid_outputs = dict(outputs)


def pyramid_backbone(model: keras.Model, name: str | None = None) -> PyramidBackbone:
    """An EfficientNet of this package as a keras-hub image encoder.

    Key ``"Pk"`` is the deepest map at reduction 2^k: the last block's output
    at that stride, as `feature_extractor`'s level k for an undilated model. A
    model built with ``output_stride`` 16 or 8 has no map at the strides it
    gave up, so it has fewer keys: at ``output_stride=16``, ``"P4"`` is the
    last block's output (feature_extractor's P5, dilated) and there is no
    ``"P5"``; at 8, ``"P3"`` is. keras-hub's DeepLabV3 upsamples by 2^k of the
    key it pools, so its maps come out at the input's size either way.

    Args:
        model: An EfficientNet of this package (classifier, ``include_top=False``
            or ``features_only``); the new model shares its layers and weights.
        name: Name of the new model; default ``"<model name>_pyramid"``.

    Example:
        >>> from keras_efficientnets import EfficientNetB0
        >>> encoder = pyramid_backbone(EfficientNetB0(weights=None, include_top=False, output_stride=16))
        >>> {key: tensor.shape[-1] for key, tensor in encoder.pyramid_outputs.items()}
        {'P1': 16, 'P2': 24, 'P3': 40, 'P4': 320}
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model built by this package. {received('model', model)}")
    deepest_at = {}  # reduction -> the deepest level's layer at it (levels come shallowest first)
    for _, graph_level in sorted(pyramid_levels(model).items()):
        deepest_at[graph_level.reduction] = graph_level.layer
    outputs = {
        f"P{reduction.bit_length() - 1}": output_in_graph(layer) for reduction, layer in deepest_at.items()
    }
    with room_for_graph_walk(len(model.layers)):
        return PyramidBackbone(model.input, outputs, name=name or f"{model.name}_pyramid")


def check_pyramid_key(encoder, argument: str, key: str) -> str:
    """`key` if `encoder.pyramid_outputs` has it, else a ValueError naming the argument, the key
    and the keys present."""
    present = list(getattr(encoder, "pyramid_outputs", None) or {})
    if key not in present:
        raise ValueError(
            f"`{argument}` is {key!r}, which {getattr(encoder, 'name', 'the encoder')!r} lacks: its "
            f"pyramid_outputs are {present}. A dilated backbone (output_stride 16 or 8) has no level "
            "past its output stride."
        )
    return key


def reduction_of_key(key: str) -> int:
    """The stride against the input of the map under a pyramid key: ``"P4"`` -> 16."""
    return 2 ** int(key[1:])


def _is_pyramid_key(key) -> bool:
    return isinstance(key, str) and key.startswith("P") and key[1:].isdigit() and int(key[1:]) >= 1
