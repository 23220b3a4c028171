"""``run.output_dir`` as an object-store URI (``s3://bucket/prefix``, ``gs://bucket/prefix``):
the run works in a local mirror folder, and the store holds what each stage finished.

pyarrow's filesystems do the I/O (``pyarrow.fs.FileSystem.from_uri``). Credentials and the
endpoint come from the environment, never from the config: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (or any source of the AWS chain), ``AWS_ENDPOINT_URL`` for an
S3-compatible server (MinIO, moto, Ceph), Google's application-default credentials for
``gs://``. A URI that carries a key (``s3://KEY:SECRET@bucket``, ``?secret_key=``) is refused.

The protocol (:class:`Mirror`):

1. **Before the run** :meth:`Mirror.pull` copies the store's ``stages/`` into the mirror (files
   missing locally or of another size): finished stage folders with their ``_stage.json``, and
   the committed files of an unfinished one (a killed score's ``plan.json`` and shards), so the
   stage cache and the scoring resume read them as local files. The mirror's path is a function
   of the URI (``~/.cache/pdray/mirror/<sha256(URI)[:16]>``, or ``run.local_dir``), so the
   absolute paths that manifests record resolve again after a fresh pull on the same machine.
2. **While a stage runs** a background thread uploads its folder's new or changed files every
   :data:`SYNC_S` seconds (never its marker), so what a killed stage committed (score shards)
   is in the store, and a rerun resumes from it even after the mirror is deleted.
3. **When a stage finishes** its folder is uploaded, objects the stage removed are deleted, and
   ``_stage.json`` is uploaded **last**: a stage copy in the store counts as finished only once
   its marker is there.
4. **At the end** the run's own files (``config.yaml``, ``run.json``, ``summary.*``, ``mlruns``)
   are uploaded.

Locks: the stage locks are the mirror's file locks, held by the one driver; no conditional
write is used (see CONTRACTS.md, "Object-store output"). Not uploaded: names starting with
``.`` (staging files, locks) and ``_ray`` folders (Ray Train's local checkpoints, used only for
recovery inside a run).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from pdray.errors import ConfigError, StorageError

MARKER = "_stage.json"      # pdray.pipeline.cache.MARKER (that module imports this one)
SYNC_S = 2.0                # seconds between uploads of a running stage's committed files
SECRET_KEYS = ("secret", "access_key", "session_token", "token", "password", "credential")


def is_uri(path: str | os.PathLike | None) -> bool:
    """True for an object-store URI (``s3://``, ``gs://``, ...); ``file://`` is a local path."""
    s = str(path or "")
    return "://" in s and not s.startswith("file://")


def redact(uri: str) -> str:
    """``uri`` with any user-info and credential parameter masked (``***``): what an error may
    print. Anything else comes back unchanged."""
    if not is_uri(uri):
        return uri
    u = urlparse(uri)
    netloc = ("***@" + u.netloc.rsplit("@", 1)[1]) if "@" in u.netloc else u.netloc
    query = "&".join(f"{k}=***" if any(s in k.lower() for s in SECRET_KEYS) else f"{k}={v}"
                     for k, vs in parse_qs(u.query, keep_blank_values=True).items() for v in vs)
    return u._replace(netloc=netloc, query=query).geturl()


def check_credentials(uri: str, key: str = "run.output_dir") -> None:
    """Refuse a URI that carries credentials (user-info, a secret parameter) with a one-line
    :class:`ConfigError` that shows it masked (:func:`redact`)."""
    if not is_uri(uri):
        return
    u = urlparse(uri)
    if "@" in u.netloc or any(any(s in q.lower() for s in SECRET_KEYS)
                              for q in parse_qs(u.query)):
        raise ConfigError(f"config: {key}={redact(uri)!r}: the URI carries credentials; give "
                          "them in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                          "AWS_ENDPOINT_URL), never in the config")


def check_uri(uri: str, key: str = "run.output_dir") -> str:
    """``uri`` when it is an ``s3://`` or ``gs://`` URI naming a bucket; a one-line
    ``ValueError`` otherwise (see :func:`check_credentials` for keys in a URI)."""
    check_credentials(uri, key)
    u = urlparse(uri)
    if u.scheme not in ("s3", "gs", "gcs"):
        raise ValueError("only s3:// and gs:// object stores are supported")
    if not u.hostname:
        raise ValueError("the URI names no bucket")
    return uri


def default_mirror(uri: str) -> Path:
    """The local mirror of ``uri``: ``$PDRAY_CACHE/mirror/<sha256(uri)[:16]>`` (default cache
    ``~/.cache/pdray``), the same path for the same URI on every run."""
    cache = Path(os.environ.get("PDRAY_CACHE") or Path.home() / ".cache" / "pdray")
    return (cache / "mirror" / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
            ).resolve()


def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    return any(p.startswith(".") or p == "_ray" for p in parts)


class Mirror:
    """A local folder mirrored to the object-store URI ``uri`` (see the module doc)."""

    def __init__(self, uri: str, local: str | Path | None = None, echo=None):
        import pyarrow.fs as pafs

        self.uri = uri.rstrip("/")
        self.local = Path(local).expanduser().resolve() if local else default_mirror(self.uri)
        self.echo = echo or (lambda _: None)
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
        except Exception as e:  # noqa: BLE001 - one line, whatever pyarrow says
            raise StorageError(f"not a usable object-store URI: {_reason(e)}",
                               path=self.uri) from None
        self.root = self.root.rstrip("/")
        self._synced: dict[str, tuple[int, int]] = {}   # rel -> local (size, mtime_ns) in store
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ names
    def uri_of(self, local: str | Path) -> str:
        """The store URI of a path under the mirror (what pdray prints beside the local one)."""
        return f"{self.uri}/{self._rel(Path(local))}".rstrip("/")

    def _rel(self, p: Path) -> str:
        return p.resolve().relative_to(self.local).as_posix() if p.resolve() != self.local \
            else ""

    def _key(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Reach the store, find its bucket, write and delete a probe: one line otherwise
        (unreachable endpoint, missing bucket, refused credentials), naming the URI."""
        import pyarrow.fs as pafs

        bucket = self.root.split("/", 1)[0]
        probe = self._key(".pdray-write-check")
        try:
            if self.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise StorageError(f"bucket {bucket!r} does not exist (pdray does not create "
                                   "buckets)", path=self.uri)
            with self.fs.open_output_stream(probe) as f:
                f.write(b"ok")
            self.fs.delete_file(probe)
        except StorageError:
            raise
        except Exception as e:  # noqa: BLE001
            raise StorageError(f"the object store refused the run: {_reason(e)} (credentials "
                               "and endpoint come from the environment: AWS_ACCESS_KEY_ID, "
                               "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL)", path=self.uri) from None

    # ------------------------------------------------------------------ transfers
    def _listing(self, rel: str) -> dict[str, int]:
        """``{rel path: size}`` of the objects under ``rel``."""
        import pyarrow.fs as pafs

        sel = pafs.FileSelector(self._key(rel), recursive=True, allow_not_found=True)
        out = {}
        for info in self.fs.get_file_info(sel):
            if info.type == pafs.FileType.File:
                r = info.path[len(self.root) + 1:]
                if not _skipped(r):
                    out[r] = info.size
        return out

    def _download(self, rel: str) -> None:
        dst = self.local / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".pull-{dst.name}"
        with self.fs.open_input_stream(self._key(rel)) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        os.replace(tmp, dst)
        st = dst.stat()
        self._synced[rel] = (st.st_size, st.st_mtime_ns)

    def _upload(self, rel: str) -> None:
        src = self.local / rel
        st = src.stat()
        with open(src, "rb") as f, self.fs.open_output_stream(self._key(rel)) as out:
            while chunk := f.read(1 << 22):
                out.write(chunk)
        self._synced[rel] = (st.st_size, st.st_mtime_ns)

    def pull(self, rel: str = "stages") -> int:
        """Copy the store's files under ``rel`` that the mirror lacks (or holds at another
        size) into the mirror; return how many were copied. Markers written in another mirror
        folder (another ``run.local_dir``) get their paths moved to this one."""
        n = 0
        try:
            for r, size in sorted(self._listing(rel).items()):
                p = self.local / r
                if p.is_file() and p.stat().st_size == size:
                    st = p.stat()
                    self._synced[r] = (st.st_size, st.st_mtime_ns)
                else:
                    self._download(r)
                    n += 1
                if p.name == MARKER:
                    self._relocate(p)
        except OSError as e:
            raise StorageError(f"cannot read the run from the object store: {_reason(e)}",
                               path=self.uri_of(self.local / rel)) from None
        return n

    def _relocate(self, marker: Path) -> None:
        """A marker's absolute paths (its manifest's ``dir``, files) rewritten from the mirror
        it was written in to this one, when they differ."""
        import json

        try:
            rec = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError:
            return   # a garbled marker: the stage cache says so and rebuilds it
        here, rel = str(marker.parent), self._rel(marker.parent)
        old = rec.get("dir") if isinstance(rec, dict) else None
        if not isinstance(old, str) or old == here or not old.endswith("/" + rel):
            return
        root, new = old[: -len(rel) - 1], str(self.local)

        def move(v):
            if isinstance(v, str) and (v == root or v.startswith(root + "/")):
                return new + v[len(root):]
            if isinstance(v, dict):
                return {k: move(x) for k, x in v.items()}
            if isinstance(v, list):
                return [move(x) for x in v]
            return v

        from pdray.io import write_json

        write_json({k: (v if k == "inputs" else move(v)) for k, v in rec.items()}, marker)

    def _local_files(self, folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        out = []
        for dirpath, dirnames, filenames in os.walk(folder):
            # subfolders in reverse order: ``shards/`` is listed before ``failures/``, so a
            # shard listed has its failures file (committed before it) listed too
            dirnames[:] = sorted((d for d in dirnames if not d.startswith(".") and d != "_ray"),
                                 reverse=True)
            for f in filenames:
                r = self._rel(Path(dirpath) / f)
                if not _skipped(r):
                    out.append(r)
        return sorted(out)

    def push(self, folder: str | Path, *, marker: bool = True, prune: bool = True,
             skip: tuple[str, ...] = ()) -> int:
        """Upload the new or changed files under ``folder`` (a path in the mirror); with
        ``prune``, delete the objects under it that the mirror no longer holds; the marker
        ``_stage.json`` last (with ``marker``), or not at all. Returns the files uploaded."""
        folder = Path(folder)
        rel_dir = self._rel(folder)
        with self._lock:
            try:
                files = [r for r in self._local_files(folder)
                         if not any(r == s or r.startswith(s + "/") for s in skip)]
                last = [r for r in files if Path(r).name == MARKER]
                body = [r for r in files if Path(r).name != MARKER]
                if prune:
                    keep = set(files)
                    for r in self._listing(rel_dir):
                        if r not in keep and Path(r).name != MARKER and \
                                not any(r == s or r.startswith(s + "/") for s in skip):
                            self.fs.delete_file(self._key(r))
                            self._synced.pop(r, None)
                n = 0
                # within a folder: plans and failures before the shards they vouch for
                body.sort(key=lambda r: ("/shards/" in f"/{r}", r))
                for r in body + (last if marker else []):
                    st = (self.local / r).stat()
                    if self._synced.get(r) != (st.st_size, st.st_mtime_ns):
                        self._upload(r)
                        n += 1
            except FileNotFoundError:   # removed while listed (a stage's own cleanup): next pass
                return 0
            except OSError as e:
                raise StorageError(f"cannot write to the object store: {_reason(e)}",
                                   path=self.uri_of(folder)) from None
        return n

    @contextlib.contextmanager
    def syncing(self, folder: str | Path) -> Iterator[None]:
        """While inside: ``folder``'s committed files go to the store every :data:`SYNC_S`
        seconds (never its marker), and once more on the way out, however it ends."""
        stop = threading.Event()

        def loop():
            while not stop.wait(SYNC_S):
                with contextlib.suppress(Exception):   # a missed pass is caught up on the next
                    self.push(folder, marker=False, prune=False)

        t = threading.Thread(target=loop, daemon=True, name="pdray-mirror-sync")
        t.start()
        try:
            yield
        except BaseException:   # what the stage committed goes up; its own error is the one
            stop.set()
            t.join(timeout=30)
            with contextlib.suppress(Exception):
                self.push(folder, marker=False, prune=False)
            raise
        stop.set()
        t.join(timeout=30)
        self.push(folder, marker=False, prune=False)


def _reason(e: BaseException) -> str:
    """pyarrow's error in one line, without request ids."""
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg.split(" (Request ID")[0]
