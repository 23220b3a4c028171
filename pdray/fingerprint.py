"""Content fingerprints of files and folders: the one hashing rule of stage keys, reward-model
sets and evaluated models.

Rule (cheap for large inputs): XXH3-128 of the whole file when it is smaller than 64 MiB;
otherwise of its size, its first and last 4 MiB and 16 evenly spaced 1 MiB blocks. A directory
hashes the sorted relative names and hashes of its files, skipping names that start with ``.``
or ``_`` (staging files, locks, markers, internal scratch folders). Hashes are memoised per
process by (path, size, mtime_ns, inode). A remote object (``s3://``, ``gs://``, ...) is hashed
through pyarrow's filesystem.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pafs
import xxhash

from pdray.io import resolve

WHOLE_FILE_LIMIT = 64 * 1024**2
EDGE_BYTES = 4 * 1024**2
SAMPLE_BLOCKS = 16
SAMPLE_BYTES = 1024**2

_HASH_MEMO: dict[tuple, str] = {}


def _hash_open_file(fh, size: int) -> str:
    h = xxhash.xxh3_128()
    if size < WHOLE_FILE_LIMIT:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
        return f"xxh3:{h.hexdigest()}"
    h.update(f"sampled:{size}".encode())
    offsets = [0, max(size - EDGE_BYTES, 0)]
    lengths = [EDGE_BYTES, EDGE_BYTES]
    step = size // (SAMPLE_BLOCKS + 1)
    for i in range(1, SAMPLE_BLOCKS + 1):
        offsets.append(i * step)
        lengths.append(SAMPLE_BYTES)
    for off, n in zip(offsets, lengths):
        fh.seek(off)
        h.update(fh.read(n))
    return f"xxh3s:{h.hexdigest()}"


def _local_file_hash(p: Path, st: os.stat_result) -> str:
    memo = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo not in _HASH_MEMO:
        with open(p, "rb") as fh:
            _HASH_MEMO[memo] = _hash_open_file(fh, st.st_size)
    return _HASH_MEMO[memo]


def _skipped(name: str) -> bool:
    return name.startswith((".", "_"))


def _tree_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        out.extend(Path(dirpath) / f for f in filenames if not _skipped(f))
    return sorted(out, key=lambda f: str(f.relative_to(root)))


def file_fingerprint(path: str | os.PathLike) -> dict | None:
    """``{"size", "mtime_ns", "hash"}`` of a local file or directory (all files under it), or of
    a remote object (``s3://``, ``gs://``, ...); None when ``path`` is no file at all (a hub id)."""
    p = str(path)
    if "://" in p:
        return _remote_fingerprint(p)
    lp = Path(p)
    if lp.is_file():
        st = lp.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": _local_file_hash(lp, st)}
    if lp.is_dir():
        h, size, mtime = xxhash.xxh3_128(), 0, 0
        for f in _tree_files(lp):
            st = f.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
            h.update(f"{f.relative_to(lp)}\0{_local_file_hash(f, st)}\0".encode())
        return {"size": size, "mtime_ns": mtime, "hash": f"xxh3:{h.hexdigest()}"}
    return None


def _remote_fingerprint(uri: str) -> dict | None:
    try:
        fs, inner = resolve(uri)
        info = fs.get_file_info(inner)
        if info.type != pafs.FileType.File:
            return None
        with fs.open_input_file(inner) as fh:
            digest = _hash_open_file(fh, info.size)
        return {"size": info.size, "mtime_ns": info.mtime_ns, "hash": digest}
    except (OSError, ValueError):
        return None


def content_hash(path: str | os.PathLike | None) -> str | None:
    """Content hash (no timestamps) of a stage output file or folder; None for None."""
    if path is None:
        return None
    fp = file_fingerprint(path)
    if fp is None:
        raise FileNotFoundError(f"{path}: stage output is missing (delete its stage folder "
                                "to recompute it)")
    return f"{fp['hash']}:{fp['size']}"


def folder_fingerprint(folders: dict[str, str | Path], root: str | Path | None = None) -> dict:
    """``"hash:size"`` of each folder (:func:`file_fingerprint`), keyed by ``name`` (a path
    relative to ``root`` when given, so a copied set keeps its fingerprint)."""
    out = {}
    for name, f in sorted(folders.items()):
        if root is not None:
            try:
                name = str(Path(f).resolve().relative_to(Path(root).resolve()))
            except ValueError:
                name = str(f)
        fp = file_fingerprint(f)
        out[name] = f"{fp['hash']}:{fp['size']}" if fp else None
    return out
