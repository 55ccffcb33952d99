"""Where the project lives and the one way it writes files: atomically.

Every file the project writes (split CSVs, model files, `metrics.json`, figures, command-line outputs,
downloads) goes through `atomic_path`: the content is written to a temporary file in the destination's
folder, flushed to disk, given the permissions a plain `open()` would give (the umask's), and renamed
over the destination. A reader never sees a half-written file, and a failed or killed writer leaves
any earlier file at that path untouched.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (notebooks, data/, model/, reports/)


def current_umask() -> int:
    """The process umask (read without changing it for longer than the call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, mode: int = 0o666) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends without an error, the temporary file is
    fsynced, given `mode` minus the umask, and renamed to `path` (its folder is created if missing).
    On an error the temporary file is removed and `path` is left as it was.

        with atomic_path("data/train.csv") as tmp:
            frame.to_csv(tmp, index=False)
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file path to write to")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode & ~current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)
