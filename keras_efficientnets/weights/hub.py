"""timm's EfficientNet checkpoints on the Hugging Face Hub, by name, as ``weights=``.

timm hosts ports of every official TensorFlow checkpoint (AutoAugment, RandAugment, AdvProp,
NoisyStudent, Lite, EdgeTPU, CondConv, V2 with ImageNet-21k) as ``timm/<architecture>.<tag>``
repositories holding ``model.safetensors`` and a ``config.json``. A `HubCheckpoint` is one of
them, for one of our variants; ``weights=`` names it three ways:

- ``"timm/tf_efficientnet_b3.ns_jft_in1k"`` or ``"hf://timm/tf_efficientnet_b3.ns_jft_in1k"``;
- a short name of `SHORT_NAMES` that the variant has (``"noisy-student"`` on B3 is the above).

Files come through ``huggingface_hub``, with its conventions: its cache (``HF_HUB_CACHE``),
``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and the token of ``huggingface-cli login`` (``HF_TOKEN``);
the three variables are read at each load. Each weights file is checked against the sha256 the
Hub published for it (the name of its blob in that cache), and a file that does not match is
removed from the cache before the error. Weights are mapped as they load (`checkpoints`);
the Hub's cache is the only copy on disk.

timm's own PyTorch-trained sets (``efficientnet_b0.ra_in1k``, ``efficientnet_b3.ra2_in1k``,
``efficientnet_lite0.ra_in1k`` ...) load by their repository name too: their networks pad
strided convolutions symmetrically and use BatchNorm epsilon 1e-5, so the model is built with
`TIMM_OWN_BUILD_OPTIONS`. timm architectures that are not these networks (``efficientnetv2_rw_s``,
the pruned and GroupNorm ones) are refused by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import re
from typing import ClassVar

import keras_efficientnets.weights.checkpoints as checkpoints
from keras_efficientnets._common.optional import require
from keras_efficientnets.arch.scaling import ModelPlan
from keras_efficientnets.arch.variants import get_variant
from keras_efficientnets.weights.downloads import WeightsDownloadError
from keras_efficientnets.weights.state_dicts import (
    STATE_DICT_SUFFIXES,
    CheckpointConfig,
    read_checkpoint_config,
    read_state_dict,
)

__all__ = [
    "SHORT_NAMES",
    "TIMM_ARCHITECTURES",
    "TIMM_TAGS",
    "TIMM_OWN_ARCHITECTURES",
    "TIMM_OWN_BUILD_OPTIONS",
    "HubCheckpoint",
    "architecture_build_options",
    "checkpoint_config_of",
    "hub_checkpoint",
    "hub_names",
    "input_size_for",
    "is_hub_name",
]

# Our variant -> timm's port of the official TensorFlow network (TF "same" padding, epsilon 1e-3).
TIMM_ARCHITECTURES = {
    **{f"b{n}": f"tf_efficientnet_b{n}" for n in range(9)},
    "l2": "tf_efficientnet_l2",
    **{f"lite{n}": f"tf_efficientnet_lite{n}" for n in range(5)},
    "edgetpus": "tf_efficientnet_es",
    "edgetpum": "tf_efficientnet_em",
    "edgetpul": "tf_efficientnet_el",
    "condconvb04e": "tf_efficientnet_cc_b0_4e",
    "condconvb08e": "tf_efficientnet_cc_b0_8e",
    "condconvb18e": "tf_efficientnet_cc_b1_8e",
    **{f"v2{size}": f"tf_efficientnetv2_{size}" for size in ("b0", "b1", "b2", "b3", "s", "m", "l", "xl")},
}
# Our variant -> timm's own network of the same layout (PyTorch padding, epsilon 1e-5), where
# timm has one; its PyTorch-trained weights (timm.list_pretrained("efficientnet_*")) load as these.
TIMM_OWN_ARCHITECTURES = {
    **{f"b{n}": f"efficientnet_b{n}" for n in range(9)},
    "l2": "efficientnet_l2",
    **{f"lite{n}": f"efficientnet_lite{n}" for n in range(5)},
    "edgetpus": "efficientnet_es",
    "edgetpum": "efficientnet_em",
    "edgetpul": "efficientnet_el",
    "condconvb04e": "efficientnet_cc_b0_4e",
    "condconvb08e": "efficientnet_cc_b0_8e",
    "condconvb18e": "efficientnet_cc_b1_8e",
    **{f"v2{size}": f"efficientnetv2_{size}" for size in ("s", "m", "l", "xl")},
}
# What timm's own networks compute differently: PyTorch's symmetric padding and BatchNorm epsilon.
TIMM_OWN_BUILD_OPTIONS = {"padding": "symmetric", "batch_norm_epsilon": 1e-5}
# The weight sets timm 1.0.31 publishes for each (timm/models/efficientnet.py's pretrained tags).
_V1_TAGS = ("aa_in1k", "ap_in1k", "in1k", "ns_jft_in1k")
_V2_21K_TAGS = ("in1k", "in21k", "in21k_ft_in1k")
TIMM_TAGS = {
    **{f"b{n}": _V1_TAGS for n in range(5)},
    "b5": (*_V1_TAGS, "ra_in1k"),
    "b6": ("aa_in1k", "ap_in1k", "ns_jft_in1k"),
    "b7": ("aa_in1k", "ap_in1k", "ns_jft_in1k", "ra_in1k"),
    "b8": ("ap_in1k", "ra_in1k"),
    "l2": ("ns_jft_in1k", "ns_jft_in1k_475"),
    **{name: ("in1k",) for name in TIMM_ARCHITECTURES if name.startswith(("lite", "edgetpu", "condconv"))},
    **{f"v2{size}": ("in1k",) for size in ("b0", "b1", "b2")},
    **{f"v2{size}": _V2_21K_TAGS for size in ("b3", "s", "m", "l")},
    "v2xl": ("in21k", "in21k_ft_in1k"),
}
# Short name -> timm's tag: the training recipe or data of the weight set.
SHORT_NAMES = {
    "official": "in1k",
    "autoaugment": "aa_in1k",
    "randaugment": "ra_in1k",
    "advprop": "ap_in1k",
    "noisy-student": "ns_jft_in1k",
    "noisy-student-475": "ns_jft_in1k_475",
    "imagenet21k": "in21k",
    "imagenet21k-ft1k": "in21k_ft_in1k",
}
_TAG_NAMES = {tag: name for name, tag in SHORT_NAMES.items()}
_REPO = re.compile(r"(?:hf://)?(timm/([A-Za-z0-9_]+)\.([A-Za-z0-9_]+))")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WEIGHTS_FILE = "model.safetensors"
_CONFIG_FILE = "config.json"


def hub_names(variant: str) -> dict[str, str]:
    """The short names a variant's timm weight sets go by, and their repositories.

    Example:
        >>> hub_names("b8")
        {'advprop': 'timm/tf_efficientnet_b8.ap_in1k', 'randaugment': 'timm/tf_efficientnet_b8.ra_in1k'}
    """
    architecture = TIMM_ARCHITECTURES[variant]
    return {_TAG_NAMES[tag]: f"timm/{architecture}.{tag}" for tag in TIMM_TAGS[variant]}


def is_hub_name(weights: str) -> bool:
    """Whether a ``weights=`` string names a Hub checkpoint (rather than a file)."""
    return weights in SHORT_NAMES or _REPO.fullmatch(weights) is not None


def hub_checkpoint(weights: str, variant: str | None) -> HubCheckpoint:
    """The checkpoint a ``weights=`` name means for `variant`, checked against it.

    Raises:
        ValueError: No variant (the custom builder), a short name the variant
            does not have (its names listed), or a repository of another
            architecture (named, with the one this variant takes).

    Example:
        >>> hub_checkpoint("noisy-student", "b3").repo_id
        'timm/tf_efficientnet_b3.ns_jft_in1k'
    """
    if variant is None:
        raise ValueError(
            "Hugging Face Hub weights need a named variant such as EfficientNetB0, whose timm "
            f"architecture they must be. Received: weights={weights!r}"
        )
    names = hub_names(variant)
    constructor = get_variant(variant).constructor_name
    match = _REPO.fullmatch(weights)
    if match is None:
        if weights not in names:
            raise ValueError(
                f"{constructor} has no {weights!r} weights on the Hub: it has "
                f"{', '.join(repr(n) for n in names)} (timm's {', '.join(names.values())}). "
                f"Received: weights={weights!r}"
            )
        return HubCheckpoint(names[weights], variant)
    repo_id = match.group(1)
    architecture_build_options(match.group(2), variant, repo_id)
    return HubCheckpoint(repo_id, variant)


def checkpoint_config_of(weights, variant: str) -> CheckpointConfig:
    """What the timm checkpoint `weights` names says of itself: a Hub name's ``config.json``
    (downloaded, small), or the one beside a ``.safetensors``/``.pth`` file; empty for other
    weights. `predict` and `train` evaluate and train at its input size and crop."""
    if isinstance(weights, str) and is_hub_name(weights):
        return hub_checkpoint(weights, variant).config()
    if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).lower().endswith(STATE_DICT_SUFFIXES):
        return read_checkpoint_config(weights)
    return CheckpointConfig()


def input_size_for(weights, variant: str) -> int:
    """The image side to evaluate and fine-tune `weights` at: a timm checkpoint's own, else the variant's.

    Example:
        >>> input_size_for("imagenet", "b3")
        300
    """
    return checkpoint_config_of(weights, variant).input_size or get_variant(variant).resolution


def architecture_build_options(architecture: str, variant: str, label: str) -> dict:
    """The build options a timm architecture's weights need on `variant` ({} for the TF ports).

    Raises:
        ValueError: The architecture is another variant's (named), or none of ours.

    Example:
        >>> architecture_build_options("efficientnet_b0", "b0", "a checkpoint")
        {'padding': 'symmetric', 'batch_norm_epsilon': 1e-05}
    """
    if architecture == TIMM_ARCHITECTURES[variant]:
        return {}
    if architecture == TIMM_OWN_ARCHITECTURES.get(variant):
        return dict(TIMM_OWN_BUILD_OPTIONS)
    fitting = [TIMM_ARCHITECTURES[variant], TIMM_OWN_ARCHITECTURES.get(variant)]
    owner = next(
        (
            v
            for table in (TIMM_ARCHITECTURES, TIMM_OWN_ARCHITECTURES)
            for v, a in table.items()
            if a == architecture
        ),
        None,
    )
    reason = (
        f"it holds {get_variant(owner).constructor_name}'s weights; build that variant instead"
        if owner is not None
        else "that is not one of the networks this package builds"
    )
    raise ValueError(
        f"{label!r} is timm's {architecture}, which does not fit {get_variant(variant).constructor_name} "
        f"(timm's {' or '.join(a for a in fitting if a)}): {reason}."
    )


@dataclasses.dataclass(frozen=True)
class HubCheckpoint:
    """A timm checkpoint on the Hugging Face Hub for one of our variants (a `sources.WeightSource`)."""

    repo_id: str
    variant: str
    kind: ClassVar[str] = "huggingface_hub"

    @property
    def description(self) -> str:
        return f"Hugging Face Hub {self.repo_id} (download, sha256 checked)"

    @property
    def build_options(self) -> dict:
        """What the model needs to compute as the checkpoint's network (`architecture_build_options`)."""
        architecture = _REPO.fullmatch(self.repo_id).group(2)
        return architecture_build_options(architecture, self.variant, self.repo_id)

    def config(self) -> CheckpointConfig:
        """What the checkpoint's ``config.json`` says (downloaded, small)."""
        return read_checkpoint_config(self._download(_CONFIG_FILE))

    def read_table(self, include_top: bool, plan: ModelPlan) -> tuple[dict, str]:
        del include_top  # the loader leaves the classifier out
        path = self._download(_WEIGHTS_FILE)
        _check_blob_digest(path, self.repo_id)
        depthwise_name = checkpoints.depthwise_name_of(self.variant)
        table = checkpoints.table_from_timm(read_state_dict(path), plan, depthwise_name)
        return table, f"{self.repo_id} ({path})"

    def _download(self, filename: str) -> str:
        hub = require("huggingface_hub", "Loading timm weights from the Hugging Face Hub")
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")
        try:
            return hub.hf_hub_download(
                self.repo_id,
                filename,
                cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                local_files_only=offline,
                library_name="keras_efficientnets",
            )
        except hub.errors.LocalEntryNotFoundError:
            raise WeightsDownloadError(
                f"{self.repo_id}/{filename} is not in the Hugging Face cache and "
                f"{'HF_HUB_OFFLINE is set' if offline else 'the Hub cannot be reached'}: download it "
                f"where there is a network (huggingface-cli download {self.repo_id}), or pass weights=None."
            ) from None
        except (
            hub.errors.HfHubHTTPError,
            hub.errors.EntryNotFoundError,
            OSError,
            ValueError,
            *_transport_errors(),
        ) as error:
            raise WeightsDownloadError(
                f"Could not download {self.repo_id}/{filename} from the Hugging Face Hub "
                f"({type(error).__name__}: {' '.join(str(error).split())[:300]})."
            ) from None


def _transport_errors() -> tuple[type[Exception], ...]:
    """The connection errors of the HTTP client huggingface_hub uses: httpx2 (2.x), httpx (1.x).

    They reach the caller when a download breaks off (the connection dropped halfway) after
    huggingface_hub's retries; requests' (0.x) are OSErrors already.
    """
    errors = []
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).HTTPError)
        except ImportError:
            continue
    return tuple(errors)


def _check_blob_digest(path: str, repo_id: str) -> None:
    """The file against the sha256 the Hub published for it, which names its blob in the cache.

    A file that does not match is removed (blob and snapshot link), so the next try downloads anew.
    """
    blob = os.path.realpath(path)
    expected = os.path.basename(blob)
    if not _SHA256.fullmatch(expected):
        return  # not a Git LFS file: the Hub publishes no sha256 for it
    digest = hashlib.sha256()
    with open(blob, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        for stale in {path, blob}:
            if os.path.lexists(stale):
                os.remove(stale)
        raise WeightsDownloadError(
            f"The download of {repo_id}/{_WEIGHTS_FILE} is corrupt: its sha256 is {digest.hexdigest()}, "
            f"the Hub's is {expected}. It was removed from the cache; load again to download it anew."
        )
