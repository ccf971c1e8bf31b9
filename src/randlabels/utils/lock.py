"""An exclusive lock on a file that names its holder, so a refused process can say who has it.

The lock is ``fcntl.flock`` on the file: the operating system releases it when the holder
exits, however it exits, so a stale lock file never blocks anyone (the pid written into
it is only for the message).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class LockHeldError(RuntimeError):
    """Another process holds the lock."""


@contextlib.contextmanager
def pid_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    Raises LockHeldError ("<what> is in use by another process (pid N) ...") at once,
    without waiting, when another process holds it.
    """
    path = Path(path)
    fh = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise LockHeldError(
                f"{what} is in use by another process (pid {holder}, lock file {path}); "
                "wait for it to finish"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()
