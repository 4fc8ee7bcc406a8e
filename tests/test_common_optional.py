"""Optional packages: each named with the extra that installs it, and a missing one said so."""

import importlib.metadata
import re

import pytest

from keras_efficientnets._common.optional import OPTIONAL_PACKAGES, install_command, require


def test_every_extra_named_installs_its_package():
    requirements = importlib.metadata.requires("keras_efficientnets")
    for package, extra in OPTIONAL_PACKAGES.values():
        if extra is not None:
            listed = [r for r in requirements if re.match(rf"{re.escape(package)}\b", r)]
            assert any(f'extra == "{extra}"' in r for r in listed), (package, extra, listed)


def test_a_missing_package_names_the_pip_command():
    with pytest.raises(
        ImportError, match=r'ONNX int8 export needs onnxruntime: pip install "keras_efficientnets\[onnx\]"'
    ):
        require("onnxruntime.no_such_module", "ONNX int8 export")
    assert install_command("PIL.Image") == "pip install pillow"
    assert install_command("not_a_known_package") == "pip install not_a_known_package"
