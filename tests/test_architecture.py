"""The package's import rules, read from its source: layers, no cycles, Keras-free modules.

The subpackages are layered: a module may import modules of its own subpackage
and of lower ones only, and no import cycle may form inside a subpackage;
imports inside functions count too. The Keras-free modules import no
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

# The subpackages, bottom to top: a module may import modules of its own subpackage and of the
# subpackages below its own, never above. "" is the package's __init__ (with __main__ beside it).
LAYERS = [
    {"_common", "_moved"},
    {"arch"},
    {"weights"},
    {"models"},
    {"compat", "deploy", "training", "convert"},
    {"optimize"},
    {"cli"},
    {"", "__main__"},
]
# Importing nothing that needs Keras or any deep-learning or plotting library, at any depth:
# whole subpackages ("arch") or single modules ("weights.torch_pickle").
KERAS_FREE = {
    "_common",
    "_moved",
    "arch",
    "weights.checkpoints",
    "weights.state_dicts",
    "weights.torch_pickle",
    "deploy.calibration",
    "deploy.formats",
    "deploy.predictors",
    "optimize.projection",
    "optimize.user_cost",
    "optimize.coefficients",
    "optimize.candidates",
}
# keras-hub (an optional extra, pinned with tensorflow-text) is imported by this module alone.
KERAS_HUB_MODULE = "models.keras_hub_tasks"
# Import these only inside the functions that need them.
LAZY = {
    "",
    "deploy",
    "optimize",
    "optimize.search",
    "optimize.plots",
    "weights.downloads",
    "training",
    "training.data",
    "training.finetune",
    "training.distribution",
    "training.backup",
    "cli",
    KERAS_HUB_MODULE,
} | {f"cli.{name}" for name in ("common", "info", "predict", "train", "optimize", "convert", "export")}
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
    "keras_hub",
}


ROOT = "keras_efficientnets."


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
    """The package modules a file imports, by their name in MODULES.

    ``from keras_efficientnets.weights import checkpoints`` imports the module ``weights.checkpoints``,
    ``from keras_efficientnets.weights import load_weights_into`` the module ``weights``.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if not name.startswith(ROOT):
                continue
            relative = name[len(ROOT) :]
            while relative and relative not in MODULES:
                relative = relative.rpartition(".")[0]
            if relative:
                found.add(relative)
    return found


def subpackage(module: str) -> str:
    """``"weights"`` for ``"weights.files"``; a top-level module is its own (``"convert"``)."""
    return module.split(".")[0]


def layer_of(module: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if subpackage(module) in layer)


def in_any(module: str, names: set[str]) -> bool:
    """Whether `module` is one of `names` or inside a subpackage named there."""
    return any(module == name or module.startswith(f"{name}.") for name in names if name) or module in names


def test_every_module_has_a_layer():
    assert {subpackage(module) for module in MODULES} == set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_subpackages(module):
    upward = {
        other
        for other in package_imports(MODULES[module])
        if subpackage(other) != subpackage(module) and layer_of(other) >= layer_of(module)
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


@pytest.mark.parametrize("module", sorted(m for m in MODULES if in_any(m, KERAS_FREE)))
def test_keras_free_modules_import_no_deep_learning_library(module):
    heavy = {name for name in imports(MODULES[module]) if name.split(".")[0] in HEAVY}
    assert not heavy, f"{module} imports {heavy}"
    others = {other for other in package_imports(MODULES[module]) if not in_any(other, KERAS_FREE)}
    assert not others, f"{module} imports {others}, which need Keras"


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


def required_packages(path: pathlib.Path) -> set[str]:
    """Top-level packages a file loads through `_common.optional.require("package...", ...)`."""
    return {
        node.args[0].value.split(".")[0]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "require"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_only_one_module_imports_keras_hub():
    importers = {
        module
        for module, path in MODULES.items()
        if "keras_hub" in required_packages(path) | {name.split(".")[0] for name in imports(path)}
    }
    assert importers == {KERAS_HUB_MODULE}
