"""Downloading published weight files into the Keras cache, checked and atomic.

A file is fetched with `keras.utils.get_file` (its progress bar, its MD5 check)
into a private temporary folder inside the cache, then renamed into place. So
a download that breaks off, stalls past `DOWNLOAD_TIMEOUT_SECONDS` or arrives
corrupt leaves nothing behind, and two processes filling an empty cache at the
same time both succeed: each renames a complete, checked file over the same name.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile

from keras_efficientnets._common.fileio import file_digest

__all__ = ["DOWNLOAD_TIMEOUT_SECONDS", "WeightsDownloadError", "cache_dir", "fetch"]

# Seconds without a byte before a download is given up (a stalled server).
DOWNLOAD_TIMEOUT_SECONDS = 60.0


class WeightsDownloadError(OSError):
    """A weight file could not be downloaded, or arrived corrupt."""


def cache_dir() -> str:
    """The Keras cache folder: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` if home is read-only).

    Read at each call, so a KERAS_HOME set after import (or by tests) counts.

    Raises:
        WeightsDownloadError: KERAS_HOME names something that is not a folder.
    """
    if "KERAS_HOME" in os.environ:
        home = os.environ["KERAS_HOME"]
        if os.path.exists(home) and not os.path.isdir(home):
            raise WeightsDownloadError(
                f"KERAS_HOME={home!r} is not a folder: point it to a folder (or unset it) so that "
                "weight files can be cached there."
            )
        return home
    home = os.path.expanduser("~")
    # Keras's own fallback when the home folder cannot be written.
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    # urllib (under keras.utils.get_file) has no timeout of its own: it uses the
    # process-wide socket default, set here for the download only.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _failure_reason(error: BaseException, md5: str) -> str:
    if "hash does not match" in str(error):
        return f"the downloaded file's MD5 is not the published {md5}"
    if isinstance(error, (TimeoutError, socket.timeout)) or "timed out" in str(error):
        return f"no data for {DOWNLOAD_TIMEOUT_SECONDS:g} seconds: the server stalled"
    return f"{type(error).__name__}: {error}"


def fetch(fname: str, url: str, md5: str, subdir: str = "models") -> str:
    """The path of `fname` in the cache, downloaded from `url` unless a file with the right MD5 is there.

    Args:
        fname: File name in the cache.
        url: Where to download it from.
        md5: Its published MD5.
        subdir: Folder of the cache (``models`` as Keras).

    Raises:
        WeightsDownloadError: The download failed, stalled or arrived corrupt;
            the message names the URL and the path where a manual download goes.
    """
    import keras

    folder = os.path.join(cache_dir(), subdir)
    target = os.path.join(folder, fname)
    if os.path.isfile(target) and file_digest(target, "md5") == md5:
        return target
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{fname}.", dir=folder) as scratch:
            with _socket_timeout(DOWNLOAD_TIMEOUT_SECONDS):
                downloaded = keras.utils.get_file(
                    fname, url, file_hash=md5, hash_algorithm="md5", cache_subdir="", cache_dir=scratch
                )
            os.replace(downloaded, target)
    except Exception as error:
        raise WeightsDownloadError(
            f"Could not download the weights from {url} ({_failure_reason(error, md5)}). Check the "
            f"network, or download the file by hand and place it at {target}, or pass weights=None "
            "for random initialisation."
        ) from error
    return target
