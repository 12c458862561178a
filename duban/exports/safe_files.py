"""Files duban writes for the office (`--out`): checked first, written whole or not at all.

SPEC §16 "Files the office opens are safe": an ``--out`` that exists and is not a regular
file (a FIFO, a device, a symlink) is refused, exit 2. Writing "over" such a path by
renaming a temporary file onto it would replace the FIFO or the symlink (run as root, it
replaced /dev/null) instead of writing where the user thought. A symlink is refused even
when it points at a regular file: the rename would replace the link, not its target.

`atomic_files` writes each target under a temporary name beside it and renames it at the
end, so no reader sees half a file; on any failure the temporary files are removed, and a
full disk (ENOSPC, EDQUOT) becomes a `StorageError` (exit 1) saying so.

Every command that writes a file the office opens uses these (exports, reports, proofs,
checkpoints, notices printed to PDF).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from duban.errors import StorageError, UsageError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def check_out_path(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a Path if it does not exist or is a regular file; else UsageError (exit 2)."""
    target = Path(path)
    try:
        info = os.lstat(target)  # lstat: a symlink is judged as itself, not as its target
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be checked ({exc.strerror})") from None
    if stat.S_ISREG(info.st_mode):
        return target
    raise UsageError(f"{option} {path}: exists and is {_kind(info.st_mode)}, not a regular file; "
                     "give the name of a new or regular file (duban writes only those)")


def check_output(path: str | Path, option: str = "--out") -> Path:
    """The target of an export or report; UsageError (exit 2) if its folder cannot take it
    or it exists as something other than a regular file."""
    target = Path(path)
    folder = target.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: folder {folder} is not writable")
    if target.is_dir() and not target.is_symlink():
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    return check_out_path(target, option)


@contextmanager
def atomic_files(*targets: Path) -> Iterator[list[Path]]:
    """Temporary files beside each target, renamed over them when the block succeeds and
    removed when it fails, so no target is ever left half-written. Each target is checked
    with `check_out_path` again just before its rename."""
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for target in targets:
            check_out_path(target)
            tmp = target.resolve().with_name(f".{target.name}.{secrets.token_hex(6)}.part")
            # created like any new file (mode 0666 less the umask), unlike mkstemp's 0600:
            # a reviewer sharing the folder must be able to read the export
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            temps.append(tmp)
        yield temps
        for tmp, target in zip(temps, targets, strict=True):
            check_out_path(target)  # not turned into a FIFO or a link while we wrote
            os.replace(tmp, target)
            done.append(target)
    except BaseException as exc:
        for p in temps:
            p.unlink(missing_ok=True)
        for p in done:  # the first target renamed, a later one failed: take it back
            p.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            where = ", ".join(str(t) for t in targets)
            raise StorageError(f"cannot write {where}: the disk is full ({exc.strerror}); "
                               "nothing was written — free some space and run the command again") from exc
        raise


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"
