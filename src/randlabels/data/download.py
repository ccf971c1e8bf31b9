"""Fetch a dataset file from a URL (http, https or file) with a progress bar and an md5 check.

The download goes to a temporary file next to the destination and is renamed
into place only after the checksum matched, so an interrupted or corrupt
download never sits where a reader would trust it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from randlabels.data.dataset import DataError

URL_SCHEMES = ("http", "https", "file")
_CHUNK = 1 << 20


class DownloadError(OSError):
    """The URL could not be fetched (network unreachable, HTTP error, missing file)."""


def is_url(source: str | os.PathLike) -> bool:
    """True when ``source`` is a string with an ``http://``, ``https://`` or ``file://`` scheme."""
    return isinstance(source, str) and urllib.parse.urlsplit(source).scheme in URL_SCHEMES


def url_filename(url: str) -> str:
    """The last path component of ``url`` (``.../cifar-10-python.tar.gz`` -> the file name)."""
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    if not name:
        raise DataError(f"cannot tell a file name from the URL {url!r}; expected .../<file name>")
    return name


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_url(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    Raises :class:`DownloadError` when the URL cannot be fetched and
    :class:`DataError` when the file's md5 differs from ``md5``; in both cases
    nothing is left at ``dest`` (nor a temporary file next to it).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    digest = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(f"cannot fetch {url}: {reason}") from exc
            with response:
                total = response.headers.get("Content-Length")
                bar = tqdm(
                    total=int(total) if total and total.isdigit() else None,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"downloading {dest.name}",
                    disable=not progress,
                )
                with bar:
                    try:
                        for block in iter(lambda: response.read(_CHUNK), b""):
                            out.write(block)
                            digest.update(block)
                            bar.update(len(block))
                    except (urllib.error.URLError, OSError) as exc:
                        raise DownloadError(f"download of {url} broke off: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
        found = digest.hexdigest()
        if md5 is not None and found != md5.lower():
            raise DataError(
                f"md5 mismatch for {url}: expected {md5}, found {found}; the file is corrupt "
                "or not the official release and was not kept"
            )
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest
