"""The families and the variant table: every named model as data.

Everything here is plain data and imports no Keras, so the FLOPs counter and the
coefficient search can use it without building a model.

References:
    Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
    Networks", ICML 2019, https://arxiv.org/abs/1905.11946, and the reference code
    in tensorflow/tpu models/official/efficientnet (``efficientnet_builder.py``,
    ``lite/``, ``edgetpu/``, ``condconv/``) and google/automl ``efficientnetv2/``.
    `BlockArgs` and the block strings are in `block_args` (and importable from here).
"""

from __future__ import annotations

import dataclasses

from keras_efficientnets._common.validation import received
from keras_efficientnets.arch.block_args import BlockArgs, decode_block_string, encode_block_string

__all__ = [
    "BlockArgs",
    "FAMILIES",
    "Family",
    "Variant",
    "VARIANTS",
    "DEFAULT_BLOCK_STRINGS",
    "HEAD_FILTERS",
    "decode_block_string",
    "encode_block_string",
    "get_default_block_list",
    "get_variant",
]

# The head width of B0, before width scaling. (The stem makes the first
# stage's input_filters: 32 for B0.)
HEAD_FILTERS = 1280

# The seven stages of EfficientNet-B0 (the paper's Table 1), as block strings.
DEFAULT_BLOCK_STRINGS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)


def get_default_block_list() -> list[BlockArgs]:
    """A fresh list of the seven EfficientNet-B0 stages.

    Example:
        >>> [b.output_filters for b in get_default_block_list()]
        [16, 24, 40, 80, 112, 192, 320]
    """
    return [decode_block_string(s) for s in DEFAULT_BLOCK_STRINGS]


# EfficientNetV2 (google/automl efficientnetv2/effnetv2_configs.py, as published; keras.applications'
# DEFAULT_BLOCKS_ARGS are the same stages). B0-B3 share the base stages and scale them.
V2_BASE_BLOCK_STRINGS = (
    "r1_k3_s1_e1_i32_o16_c1",
    "r2_k3_s2_e4_i16_o32_c1",
    "r2_k3_s2_e4_i32_o48_c1",
    "r3_k3_s2_e4_i48_o96_se0.25",
    "r5_k3_s1_e6_i96_o112_se0.25",
    "r8_k3_s2_e6_i112_o192_se0.25",
)
V2_S_BLOCK_STRINGS = (
    "r2_k3_s1_e1_i24_o24_c1",
    "r4_k3_s2_e4_i24_o48_c1",
    "r4_k3_s2_e4_i48_o64_c1",
    "r6_k3_s2_e4_i64_o128_se0.25",
    "r9_k3_s1_e6_i128_o160_se0.25",
    "r15_k3_s2_e6_i160_o256_se0.25",
)
V2_M_BLOCK_STRINGS = (
    "r3_k3_s1_e1_i24_o24_c1",
    "r5_k3_s2_e4_i24_o48_c1",
    "r5_k3_s2_e4_i48_o80_c1",
    "r7_k3_s2_e4_i80_o160_se0.25",
    "r14_k3_s1_e6_i160_o176_se0.25",
    "r18_k3_s2_e6_i176_o304_se0.25",
    "r5_k3_s1_e6_i304_o512_se0.25",
)
V2_L_BLOCK_STRINGS = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r7_k3_s2_e4_i32_o64_c1",
    "r7_k3_s2_e4_i64_o96_c1",
    "r10_k3_s2_e4_i96_o192_se0.25",
    "r19_k3_s1_e6_i192_o224_se0.25",
    "r25_k3_s2_e6_i224_o384_se0.25",
    "r7_k3_s1_e6_i384_o640_se0.25",
)
V2_XL_BLOCK_STRINGS = (
    "r4_k3_s1_e1_i32_o32_c1",
    "r8_k3_s2_e4_i32_o64_c1",
    "r8_k3_s2_e4_i64_o96_c1",
    "r16_k3_s2_e4_i96_o192_se0.25",
    "r24_k3_s1_e6_i192_o256_se0.25",
    "r32_k3_s2_e6_i256_o512_se0.25",
    "r8_k3_s1_e6_i512_o640_se0.25",
)
# EfficientNet-EdgeTPU (tensorflow/tpu models/official/efficientnet/edgetpu). The first stage
# expands from 24 channels although the stem makes 32: its kernel takes the stem's 32, its
# expanded width is 24 * 4, and `noskip` spares it a residual between unequal widths.
EDGETPU_BLOCK_STRINGS = (
    "r1_k3_s11_e4_i24_o24_c1_noskip",
    "r2_k3_s22_e8_i24_o32_c1",
    "r4_k3_s22_e8_i32_o48_c1",
    "r5_k5_s22_e8_i48_o96",
    "r4_k5_s11_e8_i96_o144",
    "r2_k5_s22_e8_i144_o192",
)
# EfficientNet-CondConv (tensorflow/tpu models/official/efficientnet/condconv): B0's stages
# with CondConv in the last three.
CONDCONV_BLOCK_STRINGS = (*DEFAULT_BLOCK_STRINGS[:4], *(s + "_cc" for s in DEFAULT_BLOCK_STRINGS[4:]))


@dataclasses.dataclass(frozen=True)
class Family:
    """What every member of a family shares: its stages and the builder options its reference code fixes.

    Attributes:
        name: Key of `FAMILIES`.
        label: How the family is called, e.g. ``"EfficientNetV2"``.
        block_strings: The unscaled stages of its members (a member may have its own).
        options: `EfficientNet` builder keywords, e.g. ``{"activation": "relu6"}``.
        summary: One sentence on what sets the family apart, for docstrings.
    """

    name: str
    label: str
    block_strings: tuple[str, ...]
    options: dict
    summary: str


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "b",
            "EfficientNet",
            DEFAULT_BLOCK_STRINGS,
            {"activation": "swish", "normalization": "imagenet"},
            "ImageNet weights expect the ImageNet mean and std, applied inside the model.",
        ),
        Family(
            "lite",
            "EfficientNet-Lite",
            DEFAULT_BLOCK_STRINGS,
            {"activation": "relu6", "use_se": False, "fix_stem_and_head": True, "normalization": "lite"},
            "EfficientNet-Lite: relu6, no squeeze-excite, fixed stem and head; "
            "ImageNet weights expect (x - 127) / 128, applied inside the model.",
        ),
        Family(
            "v2",
            "EfficientNetV2",
            V2_BASE_BLOCK_STRINGS,
            # google/automl effnetv2: BatchNorm momentum 0.9, channels rounded to multiples of 8
            # without V1's 10% bump, at least 8; keras.applications names the depthwise `dwconv2`.
            {
                "activation": "swish",
                "batch_norm_momentum": 0.9,
                "min_depth": 8,
                "round_limit": 0.0,
                "depthwise_name": "dwconv2",
                "normalization": "imagenet",
            },
            "EfficientNetV2: fused MBConv blocks in the early stages; ImageNet weights expect the "
            "ImageNet mean and std (B0-B3) or (x - 128) / 128 (S, M, L), applied inside the model.",
        ),
        Family(
            "edgetpu",
            "EfficientNet-EdgeTPU",
            EDGETPU_BLOCK_STRINGS,
            {"activation": "relu", "use_se": False, "stem_filters": 32, "normalization": "lite"},
            "EfficientNet-EdgeTPU: fused blocks, ReLU, no squeeze-excite; its checkpoints expect "
            "(x - 127) / 128, applied inside the model.",
        ),
        Family(
            "condconv",
            "EfficientNet-CondConv",
            CONDCONV_BLOCK_STRINGS,
            {"activation": "swish", "normalization": "lite"},
            "EfficientNet-CondConv: mixtures of expert kernels in the last three stages; its "
            "checkpoints expect (x - 127) / 128, applied inside the model.",
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the variant table: a named model of a family and how it scales the family's stages.

    Attributes:
        name: Key of `VARIANTS` (``"b0"``, ``"v2s"``, ``"edgetpus"``, ``"condconvb04e"``).
        constructor_name: The function that builds it, e.g. ``"EfficientNetV2S"``.
        family: Key of `FAMILIES`.
        width_coefficient, depth_coefficient: Its scaling of the stages.
        resolution: Its input size (evaluation resolution of the published weights).
        dropout_rate: Dropout before its classifier.
        block_strings: Its own stages, where they are not the family's.
        options: Builder keywords where they differ from the family's.
    """

    name: str
    constructor_name: str
    family: str
    width_coefficient: float
    depth_coefficient: float
    resolution: int
    dropout_rate: float
    block_strings: tuple[str, ...] | None = None
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def lite(self) -> bool:
        return self.family == "lite"

    @property
    def family_options(self) -> dict:
        """The builder keywords of its family, with its own on top."""
        return {**FAMILIES[self.family].options, **self.options}

    def block_args_list(self) -> list[BlockArgs]:
        """Its unscaled stages."""
        return [decode_block_string(s) for s in self.block_strings or FAMILIES[self.family].block_strings]

    def builder_options(self) -> dict:
        """The `EfficientNet` builder's keywords that make this variant (its constructor's defaults)."""
        return {
            "block_args_list": self.block_args_list(),
            "width_coefficient": self.width_coefficient,
            "depth_coefficient": self.depth_coefficient,
            "default_size": self.resolution,
            "name": f"efficientnet{self.name}",
            **self.family_options,
        }


def _variants(family: str, rows) -> list[Variant]:
    """Variants from (name, constructor, width, depth, resolution, dropout[, block strings, options]) rows."""
    return [Variant(name, constructor, family, *rest) for name, constructor, *rest in rows]


# Width, depth, resolution and dropout: tensorflow/tpu efficientnet_params,
# efficientnet_lite_params, efficientnet_edgetpu_params and efficientnet_condconv_params;
# google/automl efficientnetv2_params (its evaluation resolution; keras.applications' sizes).
VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        *_variants(
            "b",
            [
                ("b0", "EfficientNetB0", 1.0, 1.0, 224, 0.2),
                ("b1", "EfficientNetB1", 1.0, 1.1, 240, 0.2),
                ("b2", "EfficientNetB2", 1.1, 1.2, 260, 0.3),
                ("b3", "EfficientNetB3", 1.2, 1.4, 300, 0.3),
                ("b4", "EfficientNetB4", 1.4, 1.8, 380, 0.4),
                ("b5", "EfficientNetB5", 1.6, 2.2, 456, 0.4),
                ("b6", "EfficientNetB6", 1.8, 2.6, 528, 0.5),
                ("b7", "EfficientNetB7", 2.0, 3.1, 600, 0.5),
                ("b8", "EfficientNetB8", 2.2, 3.6, 672, 0.5),
                ("l2", "EfficientNetL2", 4.3, 5.3, 800, 0.5),
            ],
        ),
        *_variants(
            "lite",
            [
                ("lite0", "EfficientNetLite0", 1.0, 1.0, 224, 0.2),
                ("lite1", "EfficientNetLite1", 1.0, 1.1, 240, 0.2),
                ("lite2", "EfficientNetLite2", 1.1, 1.2, 260, 0.3),
                ("lite3", "EfficientNetLite3", 1.2, 1.4, 280, 0.3),
                ("lite4", "EfficientNetLite4", 1.4, 1.8, 300, 0.3),
            ],
        ),
        *_variants(
            "v2",
            [
                ("v2b0", "EfficientNetV2B0", 1.0, 1.0, 224, 0.2),
                ("v2b1", "EfficientNetV2B1", 1.0, 1.1, 240, 0.2),
                ("v2b2", "EfficientNetV2B2", 1.1, 1.2, 260, 0.3),
                ("v2b3", "EfficientNetV2B3", 1.2, 1.4, 300, 0.3),
                ("v2s", "EfficientNetV2S", 1.0, 1.0, 384, 0.2, V2_S_BLOCK_STRINGS, {"normalization": "v2"}),
                ("v2m", "EfficientNetV2M", 1.0, 1.0, 480, 0.3, V2_M_BLOCK_STRINGS, {"normalization": "v2"}),
                ("v2l", "EfficientNetV2L", 1.0, 1.0, 480, 0.4, V2_L_BLOCK_STRINGS, {"normalization": "v2"}),
                (
                    "v2xl",
                    "EfficientNetV2XL",
                    1.0,
                    1.0,
                    512,
                    0.4,
                    V2_XL_BLOCK_STRINGS,
                    {"normalization": "v2"},
                ),
            ],
        ),
        *_variants(
            "edgetpu",
            [
                ("edgetpus", "EfficientNetEdgeTPUS", 1.0, 1.0, 224, 0.2),
                ("edgetpum", "EfficientNetEdgeTPUM", 1.0, 1.1, 240, 0.2),
                ("edgetpul", "EfficientNetEdgeTPUL", 1.2, 1.4, 300, 0.3),
            ],
        ),
        *_variants(
            "condconv",
            [
                (
                    "condconvb04e",
                    "EfficientNetCondConvB0_4e",
                    1.0,
                    1.0,
                    224,
                    0.25,
                    None,
                    {"condconv_experts": 4},
                ),
                (
                    "condconvb08e",
                    "EfficientNetCondConvB0_8e",
                    1.0,
                    1.0,
                    224,
                    0.25,
                    None,
                    {"condconv_experts": 8},
                ),
                # tensorflow/tpu's efficientnet-condconv-b0-8e-depth; served at 240 as timm does.
                (
                    "condconvb18e",
                    "EfficientNetCondConvB1_8e",
                    1.0,
                    1.1,
                    240,
                    0.25,
                    None,
                    {"condconv_experts": 8},
                ),
            ],
        ),
    )
}


def get_variant(name: str) -> Variant:
    """Looks up a variant by name, ignoring case, dashes and underscores ("B0", "efficientnet-lite0", "v2-s").

    Example:
        >>> get_variant("EfficientNetB3").resolution
        300
        >>> get_variant("efficientnetv2-s").constructor_name
        'EfficientNetV2S'
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str such as 'b0'. {received('name', name)}")
    key = name.lower().replace("efficientnet", "")
    for separator in "-_ ":
        key = key.replace(separator, "")
    if key not in VARIANTS:
        raise ValueError(
            f"Unknown EfficientNet variant {name!r}. Valid names: {', '.join(VARIANTS)}. "
            + received("name", name)
        )
    return VARIANTS[key]
