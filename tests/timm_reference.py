"""timm as the independent implementation of every family: its models, with random weights, as files.

timm imports torchvision at module level (data transforms, FrozenBatchNorm2d), but its
EfficientNet code does not use it to build or run a model. torchvision's PyPI wheels are CUDA
builds that fail to import beside the CPU torch wheel of the test extras ("operator
torchvision::nms does not exist"), and a second torch is not an option; so `import_timm`
registers empty stand-in modules under the torchvision names timm imports, before importing
timm. Any use of one fails loudly (its attributes are empty classes), so a test that reached
torchvision code would not pass by accident.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from keras_efficientnets.weights.hub import TIMM_ARCHITECTURES, TIMM_OWN_ARCHITECTURES

# The torchvision modules timm 1.0.31 imports when `timm` is imported.
_TORCHVISION_MODULES = (
    "torchvision",
    "torchvision.datasets",
    "torchvision.ops",
    "torchvision.ops.misc",
    "torchvision.transforms",
    "torchvision.transforms.functional",
    "torchvision.utils",
)


class _EmptyClass(type):
    """A class whose every attribute is another empty class (``InterpolationMode.BILINEAR``)."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _EmptyClass(name, (), {})


class _StandInModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _EmptyClass(name, (), {})


def import_timm():
    """timm, imported beside stand-ins for torchvision's modules (the module docstring says why)."""
    pytest.importorskip("torch")
    for name in _TORCHVISION_MODULES:
        sys.modules.setdefault(name, _StandInModule(name))
    # Importing timm imports torch's compiler, which writes its default cache folder into
    # os.environ (TORCHINDUCTOR_CACHE_DIR); conftest's guard rightly fails a test leaving that.
    environment = dict(os.environ)
    try:
        return pytest.importorskip("timm")
    finally:
        os.environ.clear()
        os.environ.update(environment)


def _randomize(model, seed: int) -> None:
    """Random weights like a trained network's, as `helpers.randomize_weights` gives ours.

    Kernels scaled at random around their initial values, random BatchNorm gamma and beta,
    small gammas on the last BatchNorm of residual blocks (deep random networks' residual
    stream grows otherwise), random biases.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        return low + (high - low) * torch.rand(tensor.shape, generator=generator)

    residual_last_bn = set()
    for module in model.modules():
        if getattr(module, "has_skip", False):
            norms = [child for child in module.children() if isinstance(child, torch.nn.BatchNorm2d)]
            residual_last_bn.add(id(norms[-1]))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                low, high = (0.1, 0.3) if id(module) in residual_last_bn else (0.5, 1.5)
                module.weight.copy_(uniform(module.weight, low, high))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
                continue
            for name, parameter in module.named_parameters(recurse=False):
                if name == "bias":
                    parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))
                else:
                    parameter.mul_(uniform(parameter, 0.8, 1.2))


def _calibrate_batch_norm(model, images) -> None:
    """Every BatchNorm's running statistics set to those of `images` (one pass, momentum 1)."""
    import torch

    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    model.eval()
    for module in norms:
        module.momentum = 1.0
        module.train()
    with torch.no_grad():
        model(images)
    model.eval()


def to_timm_input(images: np.ndarray, mean, std):
    """Our [0, 255] NHWC images as timm takes them: normalized on the 0-1 scale, NCHW."""
    import torch

    scaled = (images / 255.0 - np.asarray(mean)) / np.asarray(std)
    return torch.from_numpy(scaled.transpose(0, 3, 1, 2).astype("float32"))


def write_timm_checkpoint(variant: str, folder, images: np.ndarray, *, seed: int = 0, own: bool = False):
    """A timm model of `variant` with random weights, saved as a Hub snapshot folder would hold it.

    Writes ``model.safetensors`` and a ``config.json`` with its architecture and
    ``pretrained_cfg`` (mean and std), the BatchNorm statistics calibrated on `images`.
    The model is timm's port of the TensorFlow network, or with `own` timm's own network
    of the same layout (PyTorch padding, BatchNorm epsilon 1e-5).

    Returns:
        (the timm model in eval mode, the path of the .safetensors file, its mean, its std).
    """
    timm = import_timm()
    import safetensors.torch
    import torch

    architecture = (TIMM_OWN_ARCHITECTURES if own else TIMM_ARCHITECTURES)[variant]
    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False)
    _randomize(model, seed)
    mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    _calibrate_batch_norm(model, to_timm_input(images, mean, std))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.safetensors"
    safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    config = {"architecture": architecture, "pretrained_cfg": {"mean": mean, "std": std}}
    (folder / "config.json").write_text(json.dumps(config))
    return model, path, mean, std


def timm_outputs(model, images: np.ndarray, mean, std):
    """The timm model's outputs on our images: an array, or a list of NHWC arrays for features."""
    import torch

    with torch.no_grad():
        outputs = model(to_timm_input(images, mean, std))
    if isinstance(outputs, (list, tuple)):
        return [output.numpy().transpose(0, 2, 3, 1) for output in outputs]
    return outputs.numpy()


_CHUNK = 1 << 20


def _file_digest(path: Path, algorithm) -> str:
    digest = algorithm()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class LoopbackHub:
    """A Hugging Face Hub on 127.0.0.1 as `huggingface_hub` downloads from it (``HF_ENDPOINT``).

    Answers HEAD and GET of ``/<repo id>/resolve/<revision>/<file>`` with the headers the real
    Hub sends: the commit, the file's ETag (for Git LFS files, ``X-Linked-Etag``: its sha256)
    and size. Files listed in `corrupt` are announced with their true sha256 and sent with
    their last bytes zeroed; files in `truncated` are announced whole and cut off halfway (the
    connection drops). `requests` records (method, path).
    """

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self):
        self.files: dict[tuple[str, str], Path] = {}
        self.corrupt: set[tuple[str, str]] = set()
        self.truncated: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                hub._answer(self, send_body=False)

            def do_GET(self):
                hub._answer(self, send_body=True)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_repo(self, repo_id: str, folder) -> None:
        """Serves the ``model.safetensors`` and ``config.json`` of `folder` as `repo_id`.

        Read from disk at each request, never held in memory: L2's weights are 1.9 GB.
        """
        for name in ("model.safetensors", "config.json"):
            self.files[(repo_id, name)] = Path(folder) / name

    def _answer(self, request, send_body: bool) -> None:
        self.requests.append((request.command, request.path))
        match = re.fullmatch(r"/(.+)/resolve/[^/]+/(.+)", request.path.split("?")[0])
        key = (match.group(1), match.group(2)) if match else None
        if key not in self.files:
            request.send_response(404)
            request.send_header("X-Error-Code", "EntryNotFound")
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        path = self.files[key]
        size = path.stat().st_size
        request.send_response(200)
        request.send_header("X-Repo-Commit", self.COMMIT)
        if key[1].endswith(".safetensors"):
            request.send_header("X-Linked-Etag", f'"{_file_digest(path, hashlib.sha256)}"')
            request.send_header("X-Linked-Size", str(size))
        request.send_header("ETag", f'"{_file_digest(path, hashlib.sha1)}"')
        request.send_header("Content-Length", str(size))
        request.end_headers()
        if send_body:
            # A corrupt file's last bytes are zeroed, after its true sha256 was announced.
            intact = size - 64 if key in self.corrupt else size // 2 if key in self.truncated else size
            with path.open("rb") as source:
                for start in range(0, intact, _CHUNK):
                    request.wfile.write(source.read(min(_CHUNK, intact - start)))
            if key not in self.truncated:
                request.wfile.write(bytes(size - intact))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
