"""Writing a file so that readers see the old one or the whole new one, never a part.

The data goes to a temporary file beside the target, is flushed to disk, and replaces the
target with one rename. What users expect of a plain write is kept: a symlink is followed (its
target is written, the link stays), the new file gets the old one's permission bits (or
0666 & ~umask for a new file, like `open`), and a device, FIFO or directory at the path is
refused instead of being replaced by a regular file. A temporary left by a killed writer is
removed by the next save to the same path.
"""
from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["write_atomically"]

_SUFFIX = ".pynn-tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temporary_stem(name: str) -> str:
    """The target's name as the temporaries use it: shortened (with a hash, to stay distinct)
    when the name is so long that a temporary beside it would pass the file system's limit."""
    if len(os.fsencode(name)) <= 120:
        return name
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:16]
    return f"{os.fsencode(name)[:80].decode(errors='ignore')}~{digest}"


def _remove_stale_temporaries(directory: str, name: str) -> None:
    prefix = f".{_temporary_stem(name)}."
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if entry.startswith(prefix) and entry.endswith(_SUFFIX):
            pid = entry[len(prefix):-len(_SUFFIX)].split(".")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                try:
                    os.unlink(os.path.join(directory, entry))
                except OSError:
                    pass


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file, then put it at `path` in one rename."""
    path = os.path.realpath(os.fspath(path))  # a symlink's target is what gets written
    try:
        info = os.stat(path)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    else:
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(f"{path} is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} exists and is not a regular file (a device, FIFO or "
                             f"socket); refusing to replace it")
        mode = stat.S_IMODE(info.st_mode)
    directory, name = os.path.split(path)
    _remove_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f".{_temporary_stem(name)}.{os.getpid()}.{id(write):x}{_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
