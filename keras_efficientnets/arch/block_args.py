"""`BlockArgs`, one stage of blocks, and the block strings that write it in one line.

Plain data, Keras-free. The block-string syntax reads the published configs of
every family as they are written: tensorflow/tpu's (``r1_k3_s11_e1_i32_o16_se0.25``,
``noskip``, ``c1`` for EdgeTPU's blocks without depthwise, ``cc`` for CondConv) and
google/automl's EfficientNetV2 (``r2_k3_s2_e4_i24_o48_c1``: one stride digit,
``c1`` for a fused block).
"""

from __future__ import annotations

import dataclasses
import re

from keras_efficientnets._common.validation import check_bool, check_int, check_real, is_int, received

__all__ = ["BlockArgs", "decode_block_string", "encode_block_string"]


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
# Far above any published block's (EdgeTPU's 8), and low enough that the widths it makes are numbers.
MAX_EXPAND_RATIO = 256
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
    """One stage of blocks: `num_repeat` blocks with the same settings.

    The first block of a stage maps `input_filters` to `output_filters` with
    `strides`; the repeats map `output_filters` to itself with stride 1.

    Block kinds: an MBConv block (inverted bottleneck) expands the channels
    with a 1x1 convolution, filters each channel with a `kernel_size` depthwise
    convolution and projects back with a 1x1 convolution. A fused block
    (EfficientNetV2, EdgeTPU) does the expansion and the spatial filtering in
    one regular `kernel_size` convolution, which carries the stride, then
    projects with a 1x1 one; with `expand_ratio` 1 it is that one convolution
    alone, straight to `output_filters`. A CondConv block (EfficientNet-
    CondConv) mixes several expert kernels in each of its three convolutions,
    weighted per image by a routing function of its input.

    Args:
        input_filters: Channels entering the stage (before width scaling); the
            expansion and squeeze-excite widths follow from it.
        output_filters: Channels leaving the stage (before width scaling).
        kernel_size: Odd size of the depthwise (fused: the first) kernel.
        strides: Stride of the first block: 1, 2 or a pair of them.
        num_repeat: Number of blocks in the stage (before depth scaling).
        se_ratio: Squeeze-excite width as a fraction of the block's input
            channels, in (0, 1]; None for no squeeze-excite.
        expand_ratio: Expansion factor of the inverted bottleneck (1: none).
        identity_skip: Whether blocks with stride 1 and equal input and output
            channels get the residual connection (and drop-connect).
        fused: A fused block instead of an MBConv block.
        condconv: CondConv convolutions, with the model's number of experts
            (MBConv blocks only).

    Example:
        >>> BlockArgs(32, 16, kernel_size=3, strides=(1, 1), num_repeat=1,
        ...           se_ratio=0.25, expand_ratio=1).to_block_string()
        'r1_k3_s11_e1_i32_o16_se0.25'
        >>> BlockArgs.from_block_string("r2_k3_s2_e4_i24_o48_c1").fused
        True
    """

    input_filters: int | None = None
    output_filters: int | None = None
    kernel_size: int | None = None
    strides: tuple[int, int] | None = None
    num_repeat: int | None = None
    se_ratio: float | None = None
    expand_ratio: float | None = None
    identity_skip: bool = True
    fused: bool = False
    condconv: bool = False

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
        check_real("expand_ratio", self.expand_ratio, minimum=1, maximum=MAX_EXPAND_RATIO)
        object.__setattr__(self, "expand_ratio", _plain_number(self.expand_ratio))
        for field in ("identity_skip", "fused", "condconv"):
            object.__setattr__(self, field, check_bool(field, getattr(self, field)))
        if self.fused and self.condconv:
            raise ValueError(
                "`condconv` applies to MBConv blocks; a fused block has no depthwise convolution to mix. "
                f"Received: fused=True, condconv=True in {self.to_block_string()!r}"
            )

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
        - ``c1``: a fused block (``c0``, the default: MBConv); as google/automl's
          EfficientNetV2 configs and tensorflow/tpu's EdgeTPU ones write it
        - ``cc``: CondConv convolutions, as tensorflow/tpu's CondConv configs write it

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


_BLOCK_KEY = re.compile(r"^(se|noskip|cc|[rksioec])(.*)$")
# Keys that are flags: no value after them.
_FLAG_KEYS = ("noskip", "cc")
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
        if match is None or (match.group(1) in _FLAG_KEYS and match.group(2)):
            raise ValueError(
                f"Unknown block string key {op!r}: expected r, k, s, e, i, o, se, c, cc or noskip. "
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
    conv_type = options.get("c", "0")
    if conv_type not in ("0", "1"):
        raise ValueError(
            f"Block string key `c` (the block kind) must be c0 (MBConv) or c1 (fused), got c{conv_type}. "
            f"Received: block_string={block_string!r}"
        )
    return BlockArgs(
        input_filters=_parse_number("i", options["i"], block_string, integer=True),
        output_filters=_parse_number("o", options["o"], block_string, integer=True),
        kernel_size=_parse_number("k", options["k"], block_string, integer=True),
        strides=strides,
        num_repeat=_parse_number("r", options["r"], block_string, integer=True),
        se_ratio=_parse_number("se", options["se"], block_string, integer=False) if "se" in options else None,
        expand_ratio=_parse_number("e", options["e"], block_string, integer=False),
        identity_skip="noskip" not in options,
        fused=conv_type == "1",
        condconv="cc" in options,
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
    if block.fused:
        parts.append("c1")
    if block.condconv:
        parts.append("cc")
    if not block.identity_skip:
        parts.append("noskip")
    return "_".join(parts)
