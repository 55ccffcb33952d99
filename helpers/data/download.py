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
             timeout: float = 30, progress: bool = True, cached_hint: str = "") -> Path:
    """`dest`, downloaded from `url` if absent, verified, written atomically (temp file then rename).

    A cached file is verified too (the same checksum), so a damaged or replaced cache is never read as the
    published data: a mismatch is a one-line DownloadError (with `cached_hint` appended) and the file is left
    as it is. On a network error or a checksum mismatch of a download nothing is left under dest's folder and
    a one-line DownloadError says where to put the file by hand.
    """
    dest = Path(dest)
    hand = f"download {url} by hand and save it as {dest}"
    if dest.exists():
        mismatch = _mismatch(dest, git_blob, md5)
        if mismatch:
            raise DownloadError(f"{dest}: the cached file does not match the published one ({mismatch}); delete it "
                                f"to download it again, or {hand}{'; ' + cached_hint if cached_hint else ''}")
        return dest
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
        mismatch = _mismatch(tmp, git_blob, md5)
        if mismatch:
            raise DownloadError(f"{url}: {mismatch} (corrupted or changed download, removed); {hand}")
    return dest


def _mismatch(path: Path, git_blob: str | None, md5: str | None) -> str:
    """'' when `path` has the expected checksums, else what differs."""
    if git_blob is not None and (got := git_blob_sha1(path)) != git_blob:
        return f"git blob hash {got} != expected {git_blob}"
    if md5 is not None and (got := md5sum(path)) != md5:
        return f"md5 {got} != expected {md5}"
    return ""
