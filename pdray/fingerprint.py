"""Content fingerprints of files and folders: the one hashing rule of stage keys, reward-model
sets and evaluated models.

Rule (cheap for large inputs): XXH3-128 of the whole file when it is smaller than 64 MiB;
otherwise of its size, its first and last 4 MiB and 16 evenly spaced 1 MiB blocks. A directory
hashes the sorted relative names and hashes of its files, skipping names that start with ``.``
or ``_`` (staging files, locks, markers, internal scratch folders). Hashes are memoised per
process by (path, size, mtime_ns, inode). A remote object (``s3://``, ``gs://``, ...) is hashed
through pyarrow's filesystem.

Two exact hashes live here too: :func:`file_hash` (SHA-256 of every byte, for a manifest's
record of an input file) and :func:`table_hash` (XXH3 of an Arrow table's buffers, independent
of chunking, for manifests and cache keys).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
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


def file_hash(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Content hash of a file, or of every file under a directory (sorted by name)."""
    h = hashlib.new(algo)
    p = Path(path)
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(str(f.relative_to(p)).encode())
            h.update(f.read_bytes())
    else:
        fs, inner = resolve(path)
        with fs.open_input_stream(inner, compression=None) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return f"{algo}:{h.hexdigest()}"


def table_hash(table: pa.Table) -> str:
    """Content hash of a table, independent of chunking, for manifests and cache keys.

    XXH3-128 (not a cryptographic hash: it identifies content, it does not authenticate it).
    Fixed-width and string columns are hashed straight from their Arrow buffers (no copy, so a
    10-million-row table takes a fraction of a second); other types go through Arrow IPC.
    """
    h = xxhash.xxh3_128()
    h.update(str(table.schema).encode())
    for col in table.columns:
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        _hash_array(arr, h)
    return f"xxh3:{h.hexdigest()}"


def _hash_array(arr: pa.Array, h) -> None:
    n, t = len(arr), arr.type
    h.update(n.to_bytes(8, "little"))
    if arr.null_count:
        h.update(np.asarray(arr.is_valid()).tobytes())
    bufs = arr.buffers()
    off = arr.offset
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        w = t.bit_width // 8
        h.update(memoryview(bufs[1])[off * w: (off + n) * w])
        return
    if pa.types.is_string(t) or pa.types.is_binary(t):
        o = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1, offset=off * 4)
        h.update((o - o[0]).tobytes())
        if bufs[2] is not None:
            h.update(memoryview(bufs[2])[int(o[0]): int(o[-1])])
        return
    sink = pa.BufferOutputStream()
    tbl = pa.table({"c": arr})
    with pa.ipc.new_stream(sink, tbl.schema) as w:
        w.write_table(tbl)
    h.update(sink.getvalue().to_pybytes())
