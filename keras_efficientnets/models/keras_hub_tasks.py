"""keras-hub's task models on this package's backbones: the one module that imports keras-hub.

keras-hub is an optional extra (``pip install "keras_efficientnets[keras-hub]"``):
it needs tensorflow-text, whose version must match TensorFlow's to the minor
version, so the extra pins the two together. RetinaNet and the image
classifier take our models as they are (`pyramid.pyramid_backbone`, or a
model with ``include_top=False``); DeepLabV3 needs its upsampling sized from
the backbone's strides, which `deeplab_v3_backbone` does.
"""

from __future__ import annotations

from keras_efficientnets._common.optional import require
from keras_efficientnets.models.pyramid import check_pyramid_key, pyramid_backbone, reduction_of_key

__all__ = ["deeplab_v3_backbone"]


def deeplab_v3_backbone(
    encoder,
    spatial_pyramid_pooling_key: str | None = None,
    low_level_feature_key: str | None = "P2",
    dilation_rates=(6, 12, 18),
    **kwargs,
):
    """keras-hub's ``DeepLabV3Backbone`` on an EfficientNet, upsampling to the input's size.

    DeepLabV3 pools one level's map (atrous spatial pyramid pooling),
    upsamples it by ``upsampling_size`` to concatenate it with a shallower
    level's map, and upsamples the result to the input's size. The first
    factor must be the ratio of the two levels' strides, which differs
    between a dilated and an undilated backbone; this computes it.

    Args:
        encoder: A `pyramid.PyramidBackbone`, or an EfficientNet of this
            package (made one with `pyramid_backbone`).
        spatial_pyramid_pooling_key: The level to pool; default the deepest
            (``"P5"``, or ``"P4"`` with ``output_stride=16``, ``"P3"`` with 8).
        low_level_feature_key: The shallower level the decoder concatenates,
            or None for none (then the pooled map is upsampled at once).
        dilation_rates: The pooling's dilation rates (DeepLabV3+ uses 6, 12,
            18 at output stride 16, twice those at 8).
        **kwargs: Passed on to ``keras_hub.models.DeepLabV3Backbone``
            (``projection_filters``, ``image_shape``, ...).

    Returns:
        A ``keras_hub.models.DeepLabV3Backbone``, for ``DeepLabV3ImageSegmenter``.

    The input's height and width must be multiples of the pooled level's
    stride, so that the two maps meet at the same size.
    """
    keras_hub = require("keras_hub", "DeepLabV3 on an EfficientNet backbone")
    if not hasattr(encoder, "pyramid_outputs"):
        encoder = pyramid_backbone(encoder)
    pooled = spatial_pyramid_pooling_key or list(encoder.pyramid_outputs)[-1]
    check_pyramid_key(encoder, "spatial_pyramid_pooling_key", pooled)
    upsampling_size = reduction_of_key(pooled)
    if low_level_feature_key is not None:
        check_pyramid_key(encoder, "low_level_feature_key", low_level_feature_key)
        if reduction_of_key(low_level_feature_key) > upsampling_size:
            raise ValueError(
                f"`low_level_feature_key` must be a level no deeper than the pooled one "
                f"({pooled!r}). Received: low_level_feature_key={low_level_feature_key!r}"
            )
        upsampling_size //= reduction_of_key(low_level_feature_key)
    return keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder,
        spatial_pyramid_pooling_key=pooled,
        upsampling_size=upsampling_size,
        dilation_rates=list(dilation_rates),
        low_level_feature_key=low_level_feature_key,
        **kwargs,
    )
