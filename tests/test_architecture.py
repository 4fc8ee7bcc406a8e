"""The package's import rules, read from its source: layers, no cycles, Keras-free modules.

Each module may import package modules of lower layers only, which rules out
cycles; imports inside functions count too. The Keras-free modules import no
deep-learning or plotting library at all, and the lazy ones only inside
functions, so that ``import keras_efficientnets`` and the counting and search
tools start without Keras.
"""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_efficientnets"

# Bottom to top. A module may import the package modules of the layers below its own.
LAYERS = [
    {"validation", "fileio", "torch_pickle", "images", "graph_depth"},
    {"block_args", "preprocessing", "calibration", "predictors"},
    {"config"},
    {"scaling"},
    {"flops", "checkpoints", "feature_levels"},
    {"optimize.projection", "optimize.user_cost", "downloads", "weight_files", "remat", "custom_objects"},
    {
        "optimize.coefficients",
        "optimize.candidates",
        "weights",
        "blocks",
        "build_config",
        "features",
    },
    {"model", "optimize.plots"},
    {"convert", "inference", "optimize.search", "efficientnet", "training"},
    {"optimize", "deploy"},
    {"cli.common"},
    {"cli.info", "cli.predict", "cli.train", "cli.optimize", "cli.convert", "cli.export"},
    {"cli"},
    {"__main__", ""},  # "" is the package's __init__
]
KERAS_FREE = {
    "block_args",
    "calibration",
    "predictors",
    "graph_depth",
    "images",
    "validation",
    "fileio",
    "torch_pickle",
    "preprocessing",
    "config",
    "scaling",
    "flops",
    "checkpoints",
    "feature_levels",
    "optimize.projection",
    "optimize.user_cost",
    "optimize.coefficients",
    "optimize.candidates",
}
# Import these only inside the functions that need them.
LAZY = {"optimize", "optimize.search", "optimize.plots", "downloads", "training", "", "cli", "cli.common"} | {
    f"cli.{name}" for name in ("info", "predict", "train", "optimize", "convert", "export")
}
HEAVY = {
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "keras_tuner",
    "matplotlib",
    "onnx",
    "onnxruntime",
    "tf2onnx",
    "ai_edge_litert",
    "openvino",
    "nncf",
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: pathlib.Path, module_level_only: bool = False) -> list[str]:
    """Absolute module names imported by a file (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def package_imports(path: pathlib.Path) -> set[str]:
    """The package modules a file imports, by their name in MODULES."""
    found = set()
    for name in imports(path):
        if name == "keras_efficientnets" or not name.startswith("keras_efficientnets."):
            continue
        relative = name[len("keras_efficientnets.") :]
        while relative and relative not in MODULES:
            relative = relative.rpartition(".")[0]
        if relative:
            found.add(relative)
    return found


def layer_of(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if module in layer)


def test_every_module_has_a_layer():
    assert set(MODULES) == set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    upward = {
        other
        for other in package_imports(MODULES[module])
        if other != module and layer_of(other) >= layer_of(module)
    }
    assert not upward, f"{module} (layer {layer_of(module)}) imports {upward}: move one of them"


def test_no_import_cycle():
    graph = {module: package_imports(path) - {module} for module, path in MODULES.items()}
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for other in graph[module]:
            assert state.get(other) != "open", "import cycle: " + " -> ".join([*stack, module, other])
            if other not in state:
                visit(other, [*stack, module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("module", sorted(KERAS_FREE))
def test_keras_free_modules_import_no_deep_learning_library(module):
    heavy = {name for name in imports(MODULES[module]) if name.split(".")[0] in HEAVY}
    assert not heavy, f"{module} imports {heavy}"
    assert package_imports(MODULES[module]) <= KERAS_FREE


@pytest.mark.parametrize("module", sorted(LAZY))
def test_lazy_modules_import_heavy_libraries_only_inside_functions(module):
    heavy = {name for name in imports(MODULES[module], module_level_only=True) if name.split(".")[0] in HEAVY}
    assert not heavy, f"{module} imports {heavy} at module level"


def test_importing_the_package_and_its_tools_loads_no_keras():
    code = (
        "import sys, keras_efficientnets, keras_efficientnets.optimize, keras_efficientnets.cli;"
        "keras_efficientnets.count_variant_flops('b0'); keras_efficientnets.cli.build_parser();"
        "print(sorted(m for m in ('keras', 'tensorflow', 'matplotlib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_500_lines(module):
    assert len(MODULES[module].read_text().splitlines()) <= 500
