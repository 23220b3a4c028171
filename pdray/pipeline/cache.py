"""Stage outputs keyed by a hash of their inputs' content and config, so re-runs skip finished stages.

A stage's directory is ``<output_dir>/<stage>-<key[:12]>``; it counts as finished only once
``_stage.json`` (written last, atomically) exists. An interrupted stage leaves no marker and is
redone. A file lock per stage directory keeps concurrent runs (e.g. Tune trials) from writing
the same stage twice.

Cache keys cover *content*, not names: the data stage's key holds a fingerprint of its source
file(s) (:func:`file_fingerprint`: size, ``mtime_ns`` and a content hash), every later stage's
key the content hash of the upstream outputs it reads (:func:`content_hash`). An input edited in
place (same path) therefore gives a new key and the stage is recomputed, with a one-line message
naming what changed (the inputs of each finished stage are kept in its marker).

Content-hash rule (cheap for large inputs): XXH3-128 of the whole file when it is smaller than
64 MiB; otherwise of its size, its first and last 4 MiB and 16 evenly spaced 1 MiB blocks. A
directory hashes the sorted relative names and hashes of its files, skipping names that start
with ``.`` or ``_`` (staging files, locks, markers, internal scratch folders). Hashes are
memoised per process by (path, size, mtime_ns, inode).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pdray.io import resolve, write_json

MARKER = "_stage.json"
WHOLE_FILE_LIMIT = 64 * 1024**2
EDGE_BYTES = 4 * 1024**2
SAMPLE_BLOCKS = 16
SAMPLE_BYTES = 1024**2

_LAST_PAYLOADS: dict[str, tuple[str, Any]] = {}   # key -> (stage, payload), for change messages
_HASH_MEMO: dict[tuple, str] = {}


def stage_key(stage: str, payload: Any) -> str:
    """sha256 of the stage name and a canonical JSON of its config and input content hashes."""
    blob = json.dumps({"stage": stage, "payload": payload}, sort_keys=True, default=str)
    key = hashlib.sha256(blob.encode()).hexdigest()
    if len(_LAST_PAYLOADS) > 256:
        _LAST_PAYLOADS.clear()
    _LAST_PAYLOADS[key] = (stage, json.loads(json.dumps(payload, default=str)))
    return key


# ---------------------------------------------------------------------------------- hashing


def _hash_open_file(fh, size: int) -> str:
    import xxhash

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
        import xxhash

        h, size, mtime = xxhash.xxh3_128(), 0, 0
        for f in _tree_files(lp):
            st = f.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
            h.update(f"{f.relative_to(lp)}\0{_local_file_hash(f, st)}\0".encode())
        return {"size": size, "mtime_ns": mtime, "hash": f"xxh3:{h.hexdigest()}"}
    return None


def _remote_fingerprint(uri: str) -> dict | None:
    import pyarrow.fs as pafs

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


# ---------------------------------------------------------------------------- change messages

_LEAF_NAMES = {"hash": "content", "mtime_ns": "mtime", "size": "size"}


def _flatten(d: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    if isinstance(d, dict) and d:
        out: dict[tuple, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, prefix + (str(k),)))
        return out
    return {prefix: d}


def describe_change(old: Any, new: Any, limit: int = 4) -> str:
    """``source pairs.jsonl: content, mtime; cfg.limit 10 -> 20``: what differs, in one line."""
    fo, fn = _flatten(old), _flatten(new)
    groups: dict[tuple, list[str]] = {}
    plain: list[str] = []
    for k in sorted(set(fo) | set(fn)):
        a, b = fo.get(k), fn.get(k)
        if a == b:
            continue
        if k and k[-1] in _LEAF_NAMES:
            groups.setdefault(k[:-1], []).append(_LEAF_NAMES[k[-1]])
        elif isinstance(b, str) and b.startswith("xxh3") or isinstance(a, str) and \
                a.startswith("xxh3"):
            plain.append(f"{'.'.join(k)}: content")
        else:
            def short(v):
                s = json.dumps(v, default=str)
                return s if len(s) <= 40 else s[:37] + "..."
            plain.append(f"{'.'.join(k) or 'inputs'} {short(a)} -> {short(b)}")
    parts = []
    for prefix, what in groups.items():
        label = ".".join(prefix) or "input"
        named = fn.get(prefix + ("file",)) or fo.get(prefix + ("file",))
        if named:
            label = f"{label} {named}"
        parts.append(f"{label}: {', '.join(what)}")
    parts += plain
    if len(parts) > limit:
        parts = parts[:limit] + [f"{len(parts) - limit} more"]
    return "; ".join(parts) or "inputs"


class StageCache:
    def __init__(self, root: str | Path, echo=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self._explained: set[str] = set()

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key[:12]}"

    def finished(self, stage: str, key: str) -> dict | None:
        marker = self.path(stage, key) / MARKER
        if marker.exists():
            return json.loads(marker.read_text(encoding="utf-8"))
        self._explain(stage, key)
        return None

    def previous(self, stage: str, key: str) -> dict | None:
        """The most recently finished marker of ``stage`` under another key that records its
        inputs (what a change message compares against)."""
        best, best_t = None, -1
        for m in self.root.glob(f"{stage}-*/{MARKER}"):
            if m.parent == self.path(stage, key):
                continue
            try:
                t = m.stat().st_mtime_ns
                if t > best_t:
                    rec = json.loads(m.read_text(encoding="utf-8"))
                    if rec.get("stage") == stage and "inputs" in rec:
                        best, best_t = rec, t
            except (OSError, ValueError):
                continue
        return best

    def _explain(self, stage: str, key: str) -> None:
        if self.echo is None or key in self._explained or key not in _LAST_PAYLOADS:
            return
        self._explained.add(key)
        prev = self.previous(stage, key)
        if prev is None:
            return
        what = describe_change(prev["inputs"], _LAST_PAYLOADS[key][1])
        self.echo(f"[{stage}] inputs changed since the last finished run ({what}): recomputing")

    def mark(self, stage: str, key: str, info: dict) -> dict:
        d = self.path(stage, key)
        d.mkdir(parents=True, exist_ok=True)
        record = {"stage": stage, "key": key, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  **info}
        if key in _LAST_PAYLOADS and "inputs" not in record:
            record["inputs"] = _LAST_PAYLOADS[key][1]
        write_json(record, d / MARKER)
        return record

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[Path]:
        d = self.path(stage, key)
        d.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{stage}-{key[:12]}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield d
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
