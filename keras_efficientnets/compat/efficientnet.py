"""keras_efficientnets 0.1.x's ``efficientnet`` module, kept so that 2019 imports keep working.

``from keras_efficientnets.efficientnet import EfficientNetB0, preprocess_input``
gives today's objects; new code imports from `keras_efficientnets` directly.
0.1.x's ``MBConvBlock`` and ``SEBlock`` closures are gone: blocks are built
from `BlockArgs` by the `EfficientNet` builder.
"""

from keras_efficientnets.arch.preprocessing import decode_predictions, preprocess_input
from keras_efficientnets.arch.scaling import round_filters, round_repeats
from keras_efficientnets.arch.variants import VARIANTS, BlockArgs, get_default_block_list
from keras_efficientnets.models.builder import EfficientNet

__all__ = [
    "BlockArgs",
    "EfficientNet",
    "decode_predictions",
    "get_default_block_list",
    "preprocess_input",
    "round_filters",
    "round_repeats",
    *(variant.constructor_name for variant in VARIANTS.values()),
]


def __getattr__(name):
    # The named constructors are generated in `model`; look them up there.
    from keras_efficientnets.models import builder as model

    if name in __all__:
        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
