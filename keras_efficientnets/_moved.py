"""Earlier module paths, still importable: ``keras_efficientnets.config`` (0.1.x) is
``keras_efficientnets.arch.variants`` now, and so on, one table for all of them.

A finder at the end of ``sys.meta_path`` answers an earlier path with the module at its new
one: the same module object, so ``import keras_efficientnets.config`` and an attribute set on it
are the new module's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# Earlier name under keras_efficientnets -> today's.
MOVED = {
    # 0.1.x's public modules.
    "config": "arch.variants",
    "model": "models.builder",
    "efficientnet": "compat.efficientnet",
    "custom_objects": "compat.custom_objects",
    # 1.0's flat modules.
    "block_args": "arch.block_args",
    "scaling": "arch.scaling",
    "flops": "arch.flops",
    "feature_levels": "arch.feature_levels",
    "preprocessing": "arch.preprocessing",
    "blocks": "models.blocks",
    "build_config": "models.build_config",
    "features": "models.features",
    "remat": "models.remat",
    "graph_depth": "models.graph_depth",
    "weight_files": "weights.files",
    "downloads": "weights.downloads",
    "checkpoints": "weights.checkpoints",
    "torch_pickle": "weights.torch_pickle",
    "inference": "deploy.inference",
    "calibration": "deploy.calibration",
    "predictors": "deploy.predictors",
    "validation": "_common.validation",
    "fileio": "_common.fileio",
    "images": "_common.images",
}
_PREFIX = "keras_efficientnets."


def new_name(name: str) -> str | None:
    """Today's full module name for an earlier full name, or None if it did not move."""
    if not name.startswith(_PREFIX) or name[len(_PREFIX) :] not in MOVED:
        return None
    return _PREFIX + MOVED[name[len(_PREFIX) :]]


class MovedModuleFinder:
    """Finds an earlier path; loading it puts today's module in its place in ``sys.modules``
    (the import system returns what ``sys.modules`` holds once the module has run)."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        return None if new_name(fullname) is None else importlib.util.spec_from_loader(fullname, cls)

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        sys.modules[module.__name__] = importlib.import_module(new_name(module.__name__))


def install() -> None:
    if MovedModuleFinder not in sys.meta_path:
        sys.meta_path.append(MovedModuleFinder)
