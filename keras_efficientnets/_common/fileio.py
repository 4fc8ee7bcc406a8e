"""Writing files so that an interruption never leaves half of one behind; reading JSON; digests.

Every file the package writes (converted weights and their sidecars, downloads,
trained models, class lists, CSV tables, plots) is first written under a
temporary name in the destination's folder and then renamed over the
destination, which is atomic on POSIX and Windows: a reader sees the old file
or the new one, never a mixture, and Ctrl-C or a crash midway leaves the old
file as it was. Keras-free.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "atomic_path",
    "check_output_name",
    "check_writable_folder",
    "file_digest",
    "folder_beside",
    "read_json_object",
    "replace_together",
    "write_json",
]


def file_digest(path, algorithm: str) -> str:
    """Hex digest of a file's bytes (``"md5"`` for downloads, ``"sha256"`` for sidecars).

    Example:
        >>> with atomic_path("/tmp/_digest_example.txt") as tmp:
        ...     _ = open(tmp, "w").write("abc")
        >>> file_digest("/tmp/_digest_example.txt", "md5")
        '900150983cd24fb0d6963f7d28e17f72'
    """
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def check_output_name(path, argument: str) -> None:
    """Refuses a `path` that names no file or folder to write ("", ".", "folder/") or whose name is
    too long for the temporary name `atomic_path` gives it (".<name>." and up to 12 characters)."""
    text = os.fspath(path)
    name = os.path.basename(os.path.normpath(text)) if text else ""
    if name in ("", ".", "..") or text.endswith(os.sep):
        raise ValueError(f"`{argument}` must name the file or folder to write. Received: {argument}={text!r}")
    if len(os.fsencode(name)) > 240:
        raise ValueError(f"`{argument}`'s name is too long: {len(name)} characters, at most 240.")


def check_writable_folder(path, argument: str) -> str:
    """The absolute folder `path` would be written in, after checking it exists and is writable.

    Raises:
        FileNotFoundError: The folder does not exist.
        PermissionError: It cannot be written.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The folder of `{argument}` does not exist: create {folder} first. Received: {argument}={path!r}"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write in {folder}. Received: {argument}={path!r}")
    return folder


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yields a temporary path beside `path`; renames it to `path` when the block succeeds.

    If the block raises (KeyboardInterrupt included), the temporary file is
    removed and `path` is left untouched.

    Args:
        path: The destination.
        suffix: Ending of the temporary name; default the destination's
            (some writers, such as Keras's, insist on ``.keras`` or ``.weights.h5``).

    Example:
        >>> with atomic_path("/tmp/_atomic_example.txt") as tmp:
        ...     _ = open(tmp, "w").write("complete")
        >>> open("/tmp/_atomic_example.txt").read()
        'complete'
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if suffix is None:
        suffix = name[name.find(".") :] if "." in name else ""
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    os.close(handle)
    # mkstemp makes the file private (0600); give it the mode a plain open() would.
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_json(path, data) -> None:
    """Writes `data` as indented JSON, atomically."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def read_json_object(path, label: str) -> dict:
    """A JSON file holding an object, as a dict; `label` names it in errors ("The weights sidecar").

    Raises:
        ValueError: The file cannot be read, is not JSON, or holds something else than an object.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{label} {os.fspath(path)!r} is not valid JSON ({error}). Fix or delete it."
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{label} {os.fspath(path)!r} is not a JSON object. Fix or delete it.")
    return data


@contextlib.contextmanager
def folder_beside(path):
    """A temporary folder in `path`'s folder (so that renames out of it are atomic), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f".{Path(path).name}.", dir=Path(path).parent.absolute()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def replace_together(moves, folder) -> None:
    """Renames each (new, target) pair, all or none: the targets there before are moved into
    `folder` (beside them, on the same file system) first, and put back if any rename fails: an
    OpenVINO .xml and its .bin, or a trained model and its class names, stay a pair."""
    moves = [(Path(new), Path(target)) for new, target in moves]
    folder = Path(folder)
    aside, placed = [], []
    try:
        for index, (_, target) in enumerate(moves):
            if target.exists():
                old = folder / f"old-{index}"
                os.replace(target, old)
                aside.append((old, target))
        for new, target in moves:
            os.replace(new, target)
            placed.append(target)
    except BaseException:
        for target in placed:
            _remove(target)
        for old, target in aside:
            os.replace(old, target)
        raise


def _remove(path: Path):
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
