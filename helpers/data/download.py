"""Downloads that are verified (git blob hash or md5) and written atomically, with one-line errors offline.
"""
from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from helpers.files import atomic_path


class DownloadError(RuntimeError):
    """A download failed or did not verify; the message says where to put the file by hand."""


def git_blob_sha1(path: Path) -> str:
    """`git hash-object` of a file: sha1 over b"blob <size>\\0" + content."""
    h = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, *, git_blob: str | None = None, md5: str | None = None,
             timeout: float = 30, progress: bool = True) -> Path:
    """`dest`, downloaded from `url` if absent, verified, written atomically (temp file then rename).

    A cached file is used as it is. On a network error or a checksum mismatch nothing is left
    under dest's folder and a one-line DownloadError says where to put the file by hand.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    hand = f"download {url} by hand and save it as {dest}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                        for chunk in iter(lambda: resp.read(1 << 16), b""):
                            out.write(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                raise DownloadError(f"could not download {url} ({reason}); offline? {hand}") from None
        if git_blob is not None and (got := git_blob_sha1(tmp)) != git_blob:
            raise DownloadError(f"{url}: git blob hash {got} != expected {git_blob} (corrupted or changed "
                                f"download, removed); {hand}")
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise DownloadError(f"{url}: md5 {got} != expected {md5} (corrupted download, removed); {hand}")
    return dest

