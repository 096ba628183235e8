"""Write a file so that a reader, or a crash, sees the old file or the new one, never half of one.

The one way every part of postmortem replaces a file (warehouse manifests and Parquet chunks, the
catalog, report documents, ``sql --out`` results, devchain manifests, compiled contracts): write a
temporary file in the same folder, ``fsync`` it, rename it over the target (atomic on POSIX
within one filesystem), then ``fsync`` the folder so the rename itself survives a power cut. A
write that fails removes its temporary file; only a ``kill -9`` can leave one behind, and the
target is intact either way.

The temporary name is ``.{name}.{pid}.tmp``: hidden, ending in ``.tmp`` (which nothing reads as
data), and distinct per process, so two processes writing the same target never share one. A
caller that wants a fixed name (so a re-run overwrites what a killed run left) passes ``tmp``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def temp_path(path: Path) -> Path:
    """The temporary file ``replacing(path)`` writes to: ``.{name}.{pid}.tmp`` beside ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync_path(path: Path) -> None:
    """Flush a file's bytes, or a folder's entries, to disk (a rename or a new file is only
    durable once its folder is flushed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a single call may write fewer)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


@contextlib.contextmanager
def replacing(path: Path | str, *, tmp: Path | str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write; when the block ends without an error it replaces ``path``.

    ``with replacing(out) as tmp: pq.write_table(table, tmp)`` -- the block writes ``tmp`` (and
    may read it back, e.g. to hash it); then ``tmp`` is flushed, renamed over ``path`` and the
    folder flushed. If the block raises, ``tmp`` is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else temp_path(path)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def write_bytes(path: Path | str, data: bytes, *, tmp: Path | str | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see the module doc)."""
    with replacing(path, tmp=tmp) as t:
        fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)


def write_text(path: Path | str, text: str, *, tmp: Path | str | None = None) -> None:
    """Replace ``path`` with ``text`` as UTF-8, line endings exactly as given, atomically."""
    write_bytes(path, text.encode("utf-8"), tmp=tmp)
