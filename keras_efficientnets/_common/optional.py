"""Optional packages: what installs each, and one `require` that says so when one is missing.

Keras-free. The extras themselves (which packages each installs) are setup.py's ``EXTRAS``.
"""

from __future__ import annotations

import importlib

__all__ = ["OPTIONAL_PACKAGES", "install_command", "require"]

# Import name -> (the package pip installs, the extra of keras_efficientnets that brings it or None).
OPTIONAL_PACKAGES = {
    "ai_edge_litert": ("ai-edge-litert", "litert"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "onnx": ("onnx", "onnx"),
    "tf2onnx": ("tf2onnx", "onnx"),
    "onnxconverter_common": ("onnxconverter-common", "onnx"),
    "sympy": ("sympy", "onnx"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "openvino"),
    "matplotlib": ("matplotlib", "plots"),
    "keras_tuner": ("keras-tuner", "tuner"),
    "safetensors": ("safetensors", "timm"),
    "huggingface_hub": ("huggingface_hub", "timm"),
    "keras_hub": ("keras-hub", "keras-hub"),
    "PIL": ("pillow", None),
    "skimage": ("scikit-image", None),
}


def install_command(module: str) -> str:
    """The pip command that installs the package of `module` (``"onnxruntime.quantization"``)."""
    top = module.split(".")[0]
    package, extra = OPTIONAL_PACKAGES.get(top, (top, None))
    return f'pip install "keras_efficientnets[{extra}]"' if extra else f"pip install {package}"


def require(module: str, purpose: str):
    """Imports an optional package's `module`, or raises ImportError saying what installs it.

    Example:
        >>> require("json", "Reading sidecars").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{purpose} needs {module.split('.')[0]}: {install_command(module)}") from error
