"""Atomic file writes: the one helper every writer in embench uses.

A reader (or a crash) never sees half a file: the text goes to a temporary sibling, is flushed to
disk, given the permissions an ordinary ``open()`` would give it (``0o666`` less the umask,
not ``mkstemp``'s owner-only ``0o600``), then renamed over the target.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    ``exclusive``: fail with ``FileExistsError`` instead of replacing an existing file (the
    final step is then a hard link, which the filesystem refuses atomically when the name exists,
    so two concurrent writers cannot both win).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if exclusive:
            os.link(tmp, path)  # FileExistsError when another writer got there first
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, exclusive: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see ``atomic_write_bytes``."""
    return atomic_write_bytes(path, text.encode("utf-8"), exclusive=exclusive)


def atomic_write_many(files: dict[Path, str | bytes]) -> list[Path]:
    """Write several files so that they land together or not at all; returns the paths.

    Every file is first written in full to a temporary sibling (the step a full disk breaks);
    only when all of them are written are they renamed into place, one rename each. A failure
    before that removes the temporary files and leaves every target as it was.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, content in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((tmp, path))
            data = content.encode("utf-8") if isinstance(content, str) else content
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    return [path for _, path in staged]


#: errno values that mean the disk (or the user's quota) is full.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(error: BaseException) -> OSError | None:
    """The disk-full OSError in ``error``'s chain (also as safetensors/torch report it), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_FULL:
            return seen
        if "No space left on device" in str(seen) or "os error 28" in str(seen):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        seen = seen.__cause__ or seen.__context__
    return None
