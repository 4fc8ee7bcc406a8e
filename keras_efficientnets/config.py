"""Block configurations and the variant table of the EfficientNet family.

Everything here is plain data and imports no Keras, so the FLOPs counter and the
coefficient search can use it without building a model.

References:
    Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
    Networks", ICML 2019, https://arxiv.org/abs/1905.11946, and the reference code
    in tensorflow/tpu models/official/efficientnet (``efficientnet_builder.py``,
    ``lite/efficientnet_lite_builder.py``).
"""

from __future__ import annotations

import dataclasses
import re

from keras_efficientnets.validation import check_bool, check_int, check_real, is_int, received

__all__ = [
    "BlockArgs",
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


def _normalize_strides(strides) -> tuple[int, int]:
    try:
        pair = (strides, strides) if is_int(strides) else tuple(strides)
    except TypeError:
        raise TypeError(
            f"`strides` must be 1, 2 or a pair of them, such as (2, 2). {received('strides', strides)}"
        ) from None
    if len(pair) != 2 or not all(is_int(s) and s in (1, 2) for s in pair):
        raise ValueError(
            f"`strides` must be 1, 2 or a pair of them, such as (2, 2). {received('strides', strides)}"
        )
    return (int(pair[0]), int(pair[1]))


_SE_HINT = " Or None for no squeeze-excite."
# What every stage needs; se_ratio may be None (no squeeze-excite).
_REQUIRED_FIELDS = ("input_filters", "output_filters", "kernel_size", "strides", "num_repeat", "expand_ratio")


class _DecodeBlockString:
    """``decode_block_string``, kept from keras_efficientnets 0.1.x.

    ``BlockArgs.decode_block_string(s)`` and ``block.decode_block_string(s)``
    return a new BlockArgs. On the 0.1.x placeholder ``BlockArgs()`` it fills
    that instance in, once, and returns it, as 0.1.x code expects
    (``args = BlockArgs(); args.decode_block_string(s)``); a filled BlockArgs
    stays immutable.
    """

    def __get__(self, instance, owner):
        if instance is None or not instance.is_empty:
            return decode_block_string

        def fill(block_string: str):
            decoded = decode_block_string(block_string)
            for field in dataclasses.fields(decoded):
                object.__setattr__(instance, field.name, getattr(decoded, field.name))
            return instance

        return fill


def _plain_number(value):
    """A Python int or float for a NumPy or Python number, so block strings read ``e6``, ``se0.25``."""
    return int(value) if is_int(value) else float(value)


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One stage of MBConv blocks: `num_repeat` blocks with the same settings.

    The first block of a stage maps `input_filters` to `output_filters` with
    `strides`; the repeats map `output_filters` to itself with stride 1.

    Args:
        input_filters: Channels entering the stage (before width scaling).
        output_filters: Channels leaving the stage (before width scaling).
        kernel_size: Odd size of the depthwise kernel.
        strides: Stride of the first block: 1, 2 or a pair of them.
        num_repeat: Number of blocks in the stage (before depth scaling).
        se_ratio: Squeeze-excite width as a fraction of the block's input
            channels, in (0, 1]; None for no squeeze-excite.
        expand_ratio: Expansion factor of the inverted bottleneck (1: none).
        identity_skip: Whether blocks with stride 1 and equal input and output
            channels get the residual connection (and drop-connect).

    Example:
        >>> BlockArgs(32, 16, kernel_size=3, strides=(1, 1), num_repeat=1,
        ...           se_ratio=0.25, expand_ratio=1).to_block_string()
        'r1_k3_s11_e1_i32_o16_se0.25'
    """

    input_filters: int | None = None
    output_filters: int | None = None
    kernel_size: int | None = None
    strides: tuple[int, int] | None = None
    num_repeat: int | None = None
    se_ratio: float | None = None
    expand_ratio: float | None = None
    identity_skip: bool = True

    def __post_init__(self):
        if self.is_empty:
            return  # the 0.1.x placeholder, `BlockArgs()`, that decode_block_string fills in
        missing = [name for name in _REQUIRED_FIELDS if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"BlockArgs needs {', '.join(missing)} (or a block string: BlockArgs.from_block_string). "
                f"Received: {self!r}"
            )
        for field in ("input_filters", "output_filters", "num_repeat"):
            object.__setattr__(self, field, check_int(field, getattr(self, field), minimum=1))
        kernel_size = check_int("kernel_size", self.kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(
                "`kernel_size` must be a positive odd integer (1, 3, 5, ...). "
                f"{received('kernel_size', self.kernel_size)}"
            )
        object.__setattr__(self, "kernel_size", kernel_size)
        object.__setattr__(self, "strides", _normalize_strides(self.strides))
        if self.se_ratio is not None:
            check_real("se_ratio", self.se_ratio, minimum=0, maximum=1, min_open=True, hint=_SE_HINT)
            object.__setattr__(self, "se_ratio", _plain_number(self.se_ratio))
        check_real("expand_ratio", self.expand_ratio, minimum=1)
        object.__setattr__(self, "expand_ratio", _plain_number(self.expand_ratio))
        object.__setattr__(self, "identity_skip", check_bool("identity_skip", self.identity_skip))

    @property
    def has_se(self) -> bool:
        return self.se_ratio is not None

    @property
    def is_empty(self) -> bool:
        """Whether this is `BlockArgs()`, the 0.1.x placeholder that `decode_block_string` fills."""
        return all(getattr(self, name) is None for name in _REQUIRED_FIELDS) and self.se_ratio is None

    @classmethod
    def from_block_string(cls, block_string: str) -> BlockArgs:
        """Parses a block string such as ``"r1_k3_s11_e1_i32_o16_se0.25"``.

        Keys, separated by ``_``, in any order:

        - ``r<int>``: num_repeat
        - ``k<int>``: kernel_size
        - ``s<d><d>``: strides, e.g. ``s22`` (``s2`` means ``s22``)
        - ``e<number>``: expand_ratio
        - ``i<int>``, ``o<int>``: input_filters, output_filters
        - ``se<number>``: se_ratio (optional; absent means no squeeze-excite)
        - ``noskip``: identity_skip=False (optional)

        Example:
            >>> BlockArgs.from_block_string("r2_k3_s22_e6_i16_o24_se0.25").strides
            (2, 2)
        """
        return decode_block_string(block_string)

    decode_block_string = _DecodeBlockString()

    def to_block_string(self) -> str:
        """The canonical block string; `from_block_string` reads it back exactly.

        Example:
            >>> BlockArgs.from_block_string("r1_k3_s2_e6_i16_o24").to_block_string()
            'r1_k3_s22_e6_i16_o24'
        """
        return encode_block_string(self)

    def encode_block_string(self, block: BlockArgs | None = None) -> str:
        """0.1.x spelling of `to_block_string` (``block.encode_block_string(block)``)."""
        return encode_block_string(self if block is None else block)


_BLOCK_KEY = re.compile(r"^(se|noskip|[rksioe])(.*)$")
_REQUIRED_KEYS = {
    "r": "num_repeat",
    "k": "kernel_size",
    "s": "strides",
    "e": "expand_ratio",
    "i": "input_filters",
    "o": "output_filters",
}


def _parse_number(key: str, text: str, block_string: str, integer: bool):
    # [0-9], not \d: other scripts' digits are not numbers in a block string.
    pattern = r"[0-9]+" if integer else r"[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?"
    if not re.fullmatch(pattern, text):
        kind = "an integer" if integer else "a number"
        raise ValueError(
            f"Block string key `{key}` needs {kind}, got {text!r}. Received: block_string={block_string!r}"
        )
    if integer:
        return int(text)
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def decode_block_string(block_string: str) -> BlockArgs:
    """Parses a block string into `BlockArgs` (see `BlockArgs.from_block_string`)."""
    if not isinstance(block_string, str):
        raise TypeError(
            f"`block_string` must be a str such as 'r1_k3_s11_e1_i32_o16_se0.25'. "
            f"Received: block_string={block_string!r}"
        )
    options: dict[str, str] = {}
    for op in block_string.split("_"):
        match = _BLOCK_KEY.match(op)
        if match is None or (match.group(1) == "noskip" and match.group(2)):
            raise ValueError(
                f"Unknown block string key {op!r}: expected r, k, s, e, i, o, se or noskip. "
                f"Received: block_string={block_string!r}"
            )
        key, value = match.groups()
        if key in options:
            raise ValueError(
                f"Block string key `{key}` appears twice. Received: block_string={block_string!r}"
            )
        options[key] = value
    missing = [k for k in _REQUIRED_KEYS if k not in options]
    if missing:
        raise ValueError(
            f"Block string lacks the keys {', '.join(missing)} "
            f"({', '.join(_REQUIRED_KEYS[k] for k in missing)}). "
            f"Received: block_string={block_string!r}"
        )
    strides_text = options["s"]
    if not re.fullmatch(r"[0-9][0-9]?", strides_text):
        raise ValueError(
            f"Block string key `s` needs one or two digits such as s11 or s22, got {strides_text!r}. "
            f"Received: block_string={block_string!r}"
        )
    strides = tuple(int(c) for c in strides_text) * (2 if len(strides_text) == 1 else 1)
    return BlockArgs(
        input_filters=_parse_number("i", options["i"], block_string, integer=True),
        output_filters=_parse_number("o", options["o"], block_string, integer=True),
        kernel_size=_parse_number("k", options["k"], block_string, integer=True),
        strides=strides,
        num_repeat=_parse_number("r", options["r"], block_string, integer=True),
        se_ratio=_parse_number("se", options["se"], block_string, integer=False) if "se" in options else None,
        expand_ratio=_parse_number("e", options["e"], block_string, integer=False),
        identity_skip="noskip" not in options,
    )


def encode_block_string(block: BlockArgs) -> str:
    """Encodes `BlockArgs` as its canonical block string."""
    if not isinstance(block, BlockArgs):
        raise TypeError(f"`block` must be a BlockArgs. Received: block={block!r}")
    parts = [
        f"r{block.num_repeat}",
        f"k{block.kernel_size}",
        f"s{block.strides[0]}{block.strides[1]}",
        f"e{block.expand_ratio!r}",
        f"i{block.input_filters}",
        f"o{block.output_filters}",
    ]
    if block.se_ratio is not None:
        parts.append(f"se{block.se_ratio!r}")
    if not block.identity_skip:
        parts.append("noskip")
    return "_".join(parts)


def get_default_block_list() -> list[BlockArgs]:
    """A fresh list of the seven EfficientNet-B0 stages.

    Example:
        >>> [b.output_filters for b in get_default_block_list()]
        [16, 24, 40, 80, 112, 192, 320]
    """
    return [decode_block_string(s) for s in DEFAULT_BLOCK_STRINGS]


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the variant table: how a named model scales the B0 stages.

    `lite` variants (EfficientNet-Lite) use relu6, no squeeze-excite, a stem and
    head that do not scale, and keep one block in the first and last stage, so
    they quantize well and run on mobile accelerators.
    """

    name: str
    width_coefficient: float
    depth_coefficient: float
    resolution: int
    dropout_rate: float
    lite: bool = False

    @property
    def constructor_name(self) -> str:
        """``"b0"`` -> ``"EfficientNetB0"``, ``"lite0"`` -> ``"EfficientNetLite0"``."""
        return "EfficientNet" + self.name.capitalize()

    @property
    def family_options(self) -> dict:
        """Builder keywords that differ between the B and Lite families."""
        return {**self.plan_options, **self.graph_options}

    @property
    def plan_options(self) -> dict:
        """The family's keywords of `scaling.plan_model`: which blocks and widths it makes."""
        return {"fix_stem_and_head": self.lite, "use_se": not self.lite}

    @property
    def graph_options(self) -> dict:
        """The family's other builder keywords: how the layers compute."""
        if self.lite:
            return {"activation": "relu6", "normalization": "lite"}
        return {"activation": "swish", "normalization": "imagenet"}

    def block_args_list(self) -> list[BlockArgs]:
        """The family's unscaled stages."""
        return get_default_block_list()

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


def _variant_table(rows) -> dict[str, Variant]:
    return {row[0]: Variant(*row) for row in rows}


# name, width, depth, resolution, dropout (tensorflow/tpu efficientnet_params and
# efficientnet_lite_params).
VARIANTS: dict[str, Variant] = _variant_table(
    [
        ("b0", 1.0, 1.0, 224, 0.2),
        ("b1", 1.0, 1.1, 240, 0.2),
        ("b2", 1.1, 1.2, 260, 0.3),
        ("b3", 1.2, 1.4, 300, 0.3),
        ("b4", 1.4, 1.8, 380, 0.4),
        ("b5", 1.6, 2.2, 456, 0.4),
        ("b6", 1.8, 2.6, 528, 0.5),
        ("b7", 2.0, 3.1, 600, 0.5),
        ("b8", 2.2, 3.6, 672, 0.5),
        ("l2", 4.3, 5.3, 800, 0.5),
        ("lite0", 1.0, 1.0, 224, 0.2, True),
        ("lite1", 1.0, 1.1, 240, 0.2, True),
        ("lite2", 1.1, 1.2, 260, 0.3, True),
        ("lite3", 1.2, 1.4, 280, 0.3, True),
        ("lite4", 1.4, 1.8, 300, 0.3, True),
    ]
)


def get_variant(name: str) -> Variant:
    """Looks up a variant by name, case-insensitively (``"B0"``, ``"efficientnet-lite0"``).

    Example:
        >>> get_variant("EfficientNetB3").resolution
        300
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str such as 'b0'. Received: name={name!r}")
    key = name.lower().replace("efficientnet", "").strip("-_ ")
    if key not in VARIANTS:
        raise ValueError(
            f"Unknown EfficientNet variant {name!r}. Valid names: {', '.join(VARIANTS)}. "
            f"Received: name={name!r}"
        )
    return VARIANTS[key]
