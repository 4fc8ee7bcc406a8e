"""`BuildConfig`: everything that decides an EfficientNet's graph, validated in one place.

`model.EfficientNet` and the named constructors turn their arguments into a
`BuildConfig` (a frozen dataclass, validated and normalized in
``__post_init__``), and `model.build` makes the graph from it. Its `plan`
(`scaling.plan_model`) lists the blocks; the FLOPs counter counts the same plan.
"""

from __future__ import annotations

import dataclasses
import functools

import keras

from keras_efficientnets._common.validation import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_str,
    is_int,
    received,
)
from keras_efficientnets.arch.feature_levels import P5_SOURCES, feature_info, level_names_of_indices
from keras_efficientnets.arch.flops import count_plan
from keras_efficientnets.arch.preprocessing import resolve_normalization
from keras_efficientnets.arch.scaling import PLAN_KEYWORDS, ModelPlan, check_output_stride, dilate, plan_model
from keras_efficientnets.arch.variants import BlockArgs, get_default_block_list

__all__ = ["DEFAULT_SIZE", "MAX_PARAMETERS", "MIN_INPUT_SIZE", "PADDINGS", "BuildConfig"]

MIN_INPUT_SIZE = 32
# The input side of a classifier built without `input_shape` or `default_size`: the 2019
# package's (and keras.applications' B0's), so that a 2019 script's `model.input_shape` holds.
DEFAULT_SIZE = 224
# How strided convolutions pad (`EfficientNet`'s `padding`): TensorFlow's "same" (the official
# networks'), or the same amount on every side (PyTorch's, as in timm's own weights).
PADDINGS = ("same", "symmetric")
# The largest model the builder makes: 8 GB of float32 weights, 4x L2's 481M.
MAX_PARAMETERS = 2_000_000_000


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Everything that decides the graph of a model; `EfficientNet` documents each field.

    Validated and normalized in ``__post_init__`` (NumPy numbers become Python
    ones, ``data_format=None`` becomes Keras's global setting, ``input_shape=None``
    the default shape), so a config that exists can be built.
    """

    block_args_list: tuple[BlockArgs, ...] | None
    width_coefficient: float
    depth_coefficient: float
    input_shape: tuple | None = None
    include_top: bool = True
    pooling: str | None = None
    classes: int = 1000
    dropout_rate: float = 0.0
    drop_connect_rate: float = 0.0
    batch_norm_momentum: float = 0.99
    batch_norm_epsilon: float = 1e-3
    depth_divisor: int = 8
    min_depth: int | None = None
    data_format: str | None = None
    default_size: int | None = None
    activation: str = "swish"
    use_se: bool = True
    fix_stem_and_head: bool = False
    classifier_activation: str | None = "softmax"
    include_preprocessing: bool = True
    normalization: str | tuple = "imagenet"
    remat: bool = False
    dtype: str | None = None
    name: str = "efficientnet"
    round_limit: float = 0.9
    stem_filters: int | None = None
    condconv_experts: int = 4
    depthwise_name: str = "dwconv"
    sync_batch_norm: bool = False
    features_only: bool = False
    out_indices: tuple[int, ...] | None = None
    p5: str = "block"
    padding: str = "same"
    output_stride: int | None = None

    def __post_init__(self):
        def normalize(field, value):
            object.__setattr__(self, field, value)

        if self.block_args_list is None:  # 0.1.x's way of asking for B0's stages
            normalize("block_args_list", get_default_block_list())
        normalize("output_stride", check_output_stride(self.output_stride))
        _check_equal_strides(self.plan)  # making the plan checks the stages and the scaling arguments
        normalize("block_args_list", tuple(self.block_args_list))
        for field in ("width_coefficient", "depth_coefficient", "drop_connect_rate"):
            normalize(field, float(getattr(self, field)))
        normalize("include_top", check_bool("include_top", self.include_top))
        normalize("pooling", check_choice("pooling", self.pooling, (None, "avg", "max")))
        self._check_features()
        normalize("classes", check_int("classes", self.classes, minimum=1))
        normalize(
            "dropout_rate", check_real("dropout_rate", self.dropout_rate, minimum=0, maximum=1, max_open=True)
        )
        normalize(
            "batch_norm_momentum",
            check_real("batch_norm_momentum", self.batch_norm_momentum, minimum=0, maximum=1),
        )
        normalize(
            "batch_norm_epsilon",
            check_real("batch_norm_epsilon", self.batch_norm_epsilon, minimum=0, min_open=True),
        )
        if self.default_size is not None:
            normalize("default_size", check_int("default_size", self.default_size, minimum=MIN_INPUT_SIZE))
        data_format = keras.config.image_data_format() if self.data_format is None else self.data_format
        normalize(
            "data_format", check_choice("data_format", data_format, ("channels_last", "channels_first"))
        )
        normalize("input_shape", self._resolved_input_shape())
        _check_activation("activation", self.activation)
        if self.classifier_activation is not None:
            _check_activation("classifier_activation", self.classifier_activation)
        normalize("include_preprocessing", check_bool("include_preprocessing", self.include_preprocessing))
        resolve_normalization(self.normalization, channels=self.channels)
        normalize("remat", check_bool("remat", self.remat))
        normalize("sync_batch_norm", check_bool("sync_batch_norm", self.sync_batch_norm))
        if self.sync_batch_norm and keras.backend.backend() != "tensorflow":
            raise ValueError(
                "sync_batch_norm=True needs the TensorFlow backend (Keras synchronizes BatchNormalization "
                "across tf.distribute replicas only). On JAX, keras.distribution.DataParallel already "
                "computes the statistics over the global batch. "
                f"Received: sync_batch_norm=True on the {keras.backend.backend()!r} backend"
            )
        if self.dtype is not None:
            keras.dtype_policies.get(self.dtype)  # raises ValueError naming the valid policies
        normalize("name", check_str("name", self.name))
        normalize("depthwise_name", check_str("depthwise_name", self.depthwise_name))
        normalize("padding", check_choice("padding", self.padding, PADDINGS))
        self._check_size()

    @functools.cached_property
    def plan(self) -> ModelPlan:
        """Channels, blocks and drop-connect rates of the model (`scaling.plan_model`, `dilate`)."""
        plan = plan_model(**{name: getattr(self, name) for name in PLAN_KEYWORDS})
        return dilate(plan, self.output_stride)

    @property
    def feature_levels(self) -> list[str] | None:
        """The names of the levels a features_only model returns (None: all)."""
        names = [level.name for level in feature_info(self.plan, self.p5)]
        return level_names_of_indices(self.out_indices, names)

    @property
    def channels(self) -> int:
        return self.input_shape[-1 if self.data_format == "channels_last" else 0]

    def _resolved_input_shape(self) -> tuple:
        # keras.applications' rule: the default size with the classifier, any
        # size without it (the features of any image are the classifier-free use).
        shape = self.input_shape
        if shape is None:
            size = (self.default_size or DEFAULT_SIZE) if self.include_top else None
            shape = (size, size, 3) if self.data_format == "channels_last" else (3, size, size)
        problem = (
            "`input_shape` must be 3 integers or None (height, width, channels; channels first "
            f"with data_format='channels_first'), without the batch axis. {received('input_shape', shape)}"
        )
        try:
            dims = tuple(shape)
        except TypeError:
            raise TypeError(problem) from None
        if isinstance(shape, str) or not all(d is None or is_int(d) for d in dims):
            raise TypeError(problem)
        if len(dims) != 3:
            raise ValueError(problem)
        dims = tuple(None if d is None else int(d) for d in dims)
        spatial = dims[:2] if self.data_format == "channels_last" else dims[1:]
        channels = dims[2] if self.data_format == "channels_last" else dims[0]
        if any(d is not None and d < MIN_INPUT_SIZE for d in spatial):
            raise ValueError(
                f"Input images must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} pixels. "
                + received("input_shape", shape)
            )
        if channels is None or channels < 1:
            raise ValueError(
                f"`input_shape` needs a known, positive number of channels ({self.data_format}). "
                + received("input_shape", shape)
            )
        return dims

    def _check_features(self):
        object.__setattr__(self, "features_only", check_bool("features_only", self.features_only))
        object.__setattr__(self, "p5", check_choice("p5", self.p5, P5_SOURCES))
        if not self.features_only:
            if self.out_indices is not None or self.p5 != "block":
                raise ValueError(
                    "`out_indices` and `p5` choose the levels of a feature extractor: pass "
                    f"features_only=True with them. Received: out_indices={self.out_indices!r}, "
                    f"p5={self.p5!r}, features_only=False"
                )
            return
        if self.pooling is not None:
            raise ValueError(
                "A features_only model returns feature maps, which `pooling` would reduce to vectors: "
                f"leave pooling=None. Received: pooling={self.pooling!r}"
            )
        object.__setattr__(self, "include_top", False)
        self.feature_levels  # noqa: B018 - raises ValueError naming the valid out_indices
        if self.out_indices is not None:
            object.__setattr__(self, "out_indices", tuple(int(i) for i in self.out_indices))

    def _check_size(self):
        params = count_plan(self.plan, MIN_INPUT_SIZE, self.include_top, self.classes, self.channels).params
        if params > MAX_PARAMETERS:
            raise ValueError(
                f"The model would have {params:,} parameters, more than the {MAX_PARAMETERS:,} the builder "
                "accepts: lower width_coefficient, depth_coefficient or classes. Received: "
                f"width_coefficient={self.width_coefficient}, depth_coefficient={self.depth_coefficient}, "
                f"classes={self.classes}"
            )


def _check_equal_strides(plan: ModelPlan):
    for block in plan.blocks:
        if block.args.strides[0] != block.args.strides[1]:
            raise ValueError(
                "Strides must be equal along height and width: the depthwise convolutions of "
                "TensorFlow without oneDNN, and of LiteRT, support no others. "
                f"Received: strides={block.args.strides} in {block.name.rstrip('_')}"
            )


def _check_activation(name, value):
    if not (isinstance(value, str) or callable(value)):
        raise TypeError(
            f"`{name}` must be an activation name such as 'swish', or a function. {received(name, value)}"
        )
    try:
        keras.activations.get(value)
    except ValueError:
        raise ValueError(f"`{name}` is not an activation Keras knows. {received(name, value)}") from None
