"""Stage outputs keyed by a hash of their inputs' content and config, so re-runs skip finished stages.

A stage's directory is ``<output_dir>/<stage>-<key[:12]>``; it counts as finished only once
``_stage.json`` (written last, atomically) exists. An interrupted stage leaves no marker and is
redone. A file lock per stage directory keeps concurrent runs (e.g. Tune trials) from writing
the same stage twice.

Cache keys cover *content*, not names: the data stage's key holds a fingerprint of its source
file(s) (:func:`pdray.fingerprint.file_fingerprint`: size, ``mtime_ns`` and a content hash), every later stage's
key the content hash of the upstream outputs it reads (:func:`pdray.fingerprint.content_hash`). An input edited in
place (same path) therefore gives a new key and the stage is recomputed, with a one-line message
naming what changed (the inputs of each finished stage are kept in its marker).

The content-hash rule lives in :mod:`pdray.fingerprint`.

With an object-store ``run.output_dir`` the cache root is the local mirror's ``stages/``
(:class:`pdray.object_store.Mirror`): while a stage's lock is held its committed files go to the
store every few seconds, and when it is marked its folder is uploaded with ``_stage.json`` last.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pdray.io import write_json

MARKER = "_stage.json"



def stage_key(stage: str, payload: Any) -> str:
    """sha256 of the stage name and a canonical JSON of its config and input content hashes."""
    blob = json.dumps({"stage": stage, "payload": payload}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


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
    def __init__(self, root: str | Path, echo=None, mirror=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self.mirror = mirror   # pdray.object_store.Mirror of an object-store output, or None
        self._explained: set[str] = set()

    def path(self, stage: str, key: str) -> Path:
        return self.root / f"{stage}-{key[:12]}"

    def finished(self, stage: str, key: str, inputs: Any = None) -> dict | None:
        """The marker of ``stage`` under ``key``, or ``None`` (not finished: when ``inputs``, the
        payload of ``key``, is given, one line says what changed since the last finished run)."""
        marker = self.path(stage, key) / MARKER
        if marker.exists():
            return json.loads(marker.read_text(encoding="utf-8"))
        if inputs is not None:
            self._explain(stage, key, inputs)
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

    def _explain(self, stage: str, key: str, inputs: Any) -> None:
        if self.echo is None or key in self._explained:
            return
        self._explained.add(key)
        prev = self.previous(stage, key)
        if prev is None:
            return
        what = describe_change(prev["inputs"], inputs)
        self.echo(f"[{stage}] inputs changed since the last finished run ({what}): recomputing")

    def mark(self, stage: str, key: str, info: dict, inputs: Any = None) -> dict:
        """Write the marker: ``info`` (the manifest) and ``inputs``, the payload of ``key`` (what
        a later change message compares against)."""
        d = self.path(stage, key)
        d.mkdir(parents=True, exist_ok=True)
        record = {"stage": stage, "key": key, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  **info}
        if inputs is not None and "inputs" not in record:
            record["inputs"] = inputs
        write_json(record, d / MARKER)
        if self.mirror is not None:   # the folder, then its marker last: finished in the store
            self.mirror.push(d)
            if self.echo is not None:
                self.echo(f"[{stage}] uploaded: {self.mirror.uri_of(d)}")
        return record

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[Path]:
        d = self.path(stage, key)
        d.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{stage}-{key[:12]}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with self.mirror.syncing(d) if self.mirror is not None else \
                        contextlib.nullcontext():
                    yield d
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
