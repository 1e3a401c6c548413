"""Reading incubator tables and writing outputs atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from incubloc.errors import InputError

__all__ = ["atomic_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    An interrupted write leaves no half-written file under the final name.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(p) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(p).read()
    'done'
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"output {path} already exists: remove it or pass --overwrite")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise InputError(f"cannot create output folder {parent}: {exc.strerror}") from exc
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=parent)
    except OSError as exc:
        raise InputError(f"output folder {parent} is not writable: {exc.strerror}") from exc
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # drivers such as GPKG want to create the file themselves
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
