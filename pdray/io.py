"""Read and write pair tables (and any stage's table) as Parquet or JSONL.

Local paths and pyarrow filesystem URIs (``s3://bucket/key``, ``gs://…``, ``file://…``) both work;
credentials come from the environment as pyarrow resolves them. Writes are atomic: a file is
written under a temporary name and renamed, so a crashed writer never leaves half a file.
JSONL is parsed line by line so a bad line is reported with its file and row number; every read
or write failure is a one-line :class:`~pdray.errors.PdrayError` naming the path.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import re
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pdray.errors import DataError, StorageError, os_reason
from pdray.schema import pairs_from_rows

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson")


def resolve(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a URI."""
    p = str(path)
    if "://" in p:
        return pafs.FileSystem.from_uri(p)
    return pafs.LocalFileSystem(), os.path.abspath(p)


def detect_format(path: str) -> str:
    low = str(path).lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(JSONL_SUFFIXES):
        return "jsonl"
    fs, inner = resolve(path)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.Directory:
        return "parquet"
    raise DataError("cannot tell the format from the name; use .parquet, .jsonl or .jsonl.gz",
                    file=str(path))


def exists(path: str | os.PathLike) -> bool:
    fs, inner = resolve(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def output_format(path: str | os.PathLike) -> str:
    """"parquet" or "jsonl" from an output name; any other extension is refused (never guessed)."""
    low = str(path).lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(JSONL_SUFFIXES):
        return "jsonl"
    ext = os.path.splitext(low)[1] or "none"
    raise DataError(f"unsupported output extension {ext!r} (use "
                    f"{', '.join(PARQUET_SUFFIXES + JSONL_SUFFIXES)})", file=str(path))


def check_output(path: str | os.PathLike, *, table: bool = True, folder: bool = False) -> None:
    """Fail early (before any work) when ``path`` cannot be written. A file (a table when
    ``table``: also its extension): an existing folder in its place; an output folder
    (``folder``): an existing file in its place. Either: a regular file among its parents, or
    a parent folder that is not writable. URIs are only checked for their extension."""
    if table and not folder:
        output_format(path)
    if "://" in str(path):
        return
    p = Path(os.path.abspath(path))
    if not folder and p.is_dir():
        raise StorageError("cannot write: a folder is in the way", path=str(path))
    if folder and p.exists() and not p.is_dir():
        raise StorageError("cannot write: a file is in the way (expected a folder)",
                           path=str(path))
    if folder and p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise StorageError("cannot write: the folder is not writable", path=str(path))
        return
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise StorageError(f"cannot write: {parent} is a file, not a folder", path=str(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write: folder {parent} is not writable", path=str(path))


def _existing_file(path: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) of a file that exists; a one-line error otherwise."""
    fs, inner = resolve(path)
    kind = fs.get_file_info(inner).type
    if kind == pafs.FileType.NotFound:
        raise DataError("file does not exist", file=str(path))
    if kind == pafs.FileType.Directory:
        raise DataError("is a folder, expected a file", file=str(path))
    return fs, inner


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a file (gunzipped for ``.gz``); every failure is a one-line error."""
    fs, inner = _existing_file(path)
    try:
        with fs.open_input_stream(inner, compression=None) as raw:
            data = raw.read()
    except OSError as e:
        raise StorageError(f"cannot read: {os_reason(e)}", path=str(path)) from None
    if str(path).lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise DataError("truncated gzip file (the compressed data ends early)",
                            file=str(path)) from None
        except (OSError, zlib.error) as e:
            raise DataError(f"not a readable gzip file: {os_reason(e)}", file=str(path)) from None
    return data


LINE_BLOCK = 1 << 20   # bytes read at a time by iter_lines


def _open_stream(path: str | os.PathLike):
    """(stream to read, underlying file to close): the file's bytes (gunzipped for ``.gz``),
    after the checks of :func:`read_bytes`."""
    fs, inner = _existing_file(path)
    try:
        raw = fs.open_input_stream(inner, compression=None)
    except OSError as e:
        raise StorageError(f"cannot read: {os_reason(e)}", path=str(path)) from None
    if str(path).lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    return raw, raw


def iter_lines(path: str | os.PathLike, block: int = LINE_BLOCK) -> Iterator[bytes]:
    """The lines of a file without their line ends, read ``block`` bytes at a time (never the
    whole file): the same lines as ``read_bytes(path).splitlines()`` (``\\n``, ``\\r\\n`` and
    ``\\r`` end a line), less a leading UTF-8 byte-order mark. Read failures are one-line
    errors, as in :func:`read_bytes`."""
    file = str(path)
    stream, raw = _open_stream(path)
    buf, first = b"", True
    try:
        while True:
            try:
                chunk = stream.read(block)
            except EOFError:
                raise DataError("truncated gzip file (the compressed data ends early)",
                                file=file) from None
            except (OSError, zlib.error) as e:
                if isinstance(stream, gzip.GzipFile):
                    raise DataError(f"not a readable gzip file: {os_reason(e)}",
                                    file=file) from None
                raise StorageError(f"cannot read: {os_reason(e)}", path=file) from None
            buf += chunk
            if first:   # a UTF-8 byte-order mark is not data
                if chunk and len(buf) < 3:
                    continue
                first = False
                if buf.startswith(b"\xef\xbb\xbf"):
                    buf = buf[3:]
            if not chunk:
                break
            pieces = buf.splitlines(keepends=True)
            # keep the last piece while it may continue (no line end yet, or a \r whose \n
            # may come with the next block)
            buf = pieces.pop() if pieces and not pieces[-1].endswith(b"\n") else b""
            for piece in pieces:
                yield piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]
        yield from buf.splitlines()
    finally:
        stream.close()
        raw.close()


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(obj) -> str | None:
    """The top-level key whose text (or key) holds a lone UTF-16 surrogate, or ``None``."""
    for key, top in (obj.items() if isinstance(obj, dict) else [("<line>", obj)]):
        stack = [key, top]
        while stack:
            v = stack.pop()
            if isinstance(v, str):
                if not v.isascii() and any("\ud800" <= c <= "\udfff" for c in v):
                    return key
            elif isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
    return None


def _non_utf8_field(line: bytes) -> str:
    """The top-level field whose text holds the undecodable bytes (or ``<line>``)."""
    try:
        obj = json.loads(line.decode("utf-8", errors="surrogateescape"))
    except (json.JSONDecodeError, RecursionError):
        return "<line>"
    return (_lone_surrogate(obj) or "<line>") if isinstance(obj, dict) else "<line>"


def _parse_line(line: bytes) -> tuple[dict | None, str, str]:
    """(object, field, reason): the object, or ``None`` with where and why it is unreadable."""
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as e:
        return None, _non_utf8_field(line), f"not UTF-8 (byte {e.start} of the line)"
    except json.JSONDecodeError as e:
        return None, "<line>", f"not valid JSON: {e.msg} (column {e.colno})"
    except RecursionError:
        return None, "<line>", "JSON nested too deeply"
    return _check_object(obj, line)


def _check_object(obj, raw) -> tuple[dict | None, str, str]:
    if not isinstance(obj, dict):
        return None, "<line>", f"expected a JSON object, got {type(obj).__name__}"
    if raw is None or _SURROGATE_ESCAPE.search(raw):
        bad = _lone_surrogate(obj)
        if bad is not None:
            return None, bad, "lone surrogate escape (\\ud800-\\udfff without its pair) is not text"
    return obj, "", ""


def iter_json_rows(path: str | os.PathLike, on_bad=None) -> Iterator[tuple[int, dict | None]]:
    """Yield (row, object) per non-empty JSON line, or per element of a top-level JSON array
    (``.json``). A row that cannot be read (not UTF-8, not JSON, nested too deeply, a lone
    surrogate escape, not an object) goes to ``on_bad(row, field, reason, raw)`` and is yielded
    as ``(row, None)``; without ``on_bad`` it raises :class:`DataError` with file and row."""
    file = str(path)

    def bad(row, field, reason, raw):
        if on_bad is None:  # read_table's messages name the row only (pinned by its tests)
            raise DataError(reason, file=file, row=row,
                            field=None if field == "<line>" or "UTF-8" in reason else field)
        on_bad(row, field, reason, raw)

    if file.lower().endswith((".json", ".json.gz")):
        data = read_bytes(path)   # a JSON array is parsed whole; JSONL streams line by line
        if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not data
            data = data[3:]
    if file.lower().endswith((".json", ".json.gz")) and data.lstrip()[:1] == b"[":
        try:
            rows = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DataError(f"not UTF-8 at byte {e.start}", file=file) from None
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON: {e.msg} (line {e.lineno})", file=file) from None
        except RecursionError:
            raise DataError("JSON nested too deeply", file=file) from None
        for i, obj in enumerate(rows):
            obj, field, reason = _check_object(obj, None)
            if obj is None:
                bad(i, field, reason, rows[i])
            yield i, obj
        return
    row = 0
    lines = data.splitlines() if file.lower().endswith((".json", ".json.gz")) \
        else iter_lines(path)
    for line in lines:
        if not line.strip():
            continue
        obj, field, reason = _parse_line(line)
        if obj is None:
            bad(row, field, reason, line)
        yield row, obj
        row += 1


def read_table(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """Read any table (Parquet file or directory of shards, or JSONL) without schema checks.

    JSON columns are the union of every row's keys; canonical pair columns get their canonical
    types; a value that does not fit its column is a :class:`DataError` naming file, row, field."""
    fmt = detect_format(str(path))
    if fmt == "parquet":
        fs, inner = resolve(path)
        if fs.get_file_info(inner).type == pafs.FileType.NotFound:
            raise DataError("file does not exist", file=str(path))
        try:
            table = pq.read_table(inner, filesystem=fs, columns=columns)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise DataError(f"not a readable Parquet file: {_one_line(e)}", file=str(path)) from None
        except OSError as e:
            raise DataError(f"not a readable Parquet file: {os_reason(e)}", file=str(path)) from None
    else:
        rows = [obj for _, obj in iter_json_rows(path)]
        table = rows_to_table(rows, str(path))
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DataError("required column is missing", file=str(path), field=missing[0])
        table = table.select(columns)
    return table


def rows_to_table(rows: list[dict], file: str | None = None) -> pa.Table:
    """JSON rows -> a table (columns: union of keys; canonical ones canonically typed)."""
    if not rows:
        return pa.table({})
    table = pairs_from_rows(rows, file)
    keys = dict.fromkeys(k for r in rows for k in r)
    return table.select([k for k in keys if k in table.column_names])


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[tuple[pafs.FileSystem, str]]:
    """``(filesystem, temporary path)`` to write ``path`` under (its folder is created). When
    the block ends the file is renamed onto ``path``; when it raises, the temporary file is
    deleted, so a crashed writer never leaves half a file. Every atomic write in pdray goes
    through here; an ``OSError`` becomes a one-line :class:`StorageError` naming ``path``."""
    fs, inner = resolve(path)
    tmp = f"{inner}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        parent = os.path.dirname(inner)
        if parent:
            fs.create_dir(parent, recursive=True)
        yield fs, tmp
        fs.move(tmp, inner)
    except BaseException as e:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StorageError(f"cannot write: {os_reason(e)}", path=str(path)) from None
        raise


def write_table(table: pa.Table, path: str | os.PathLike) -> str:
    """Write atomically as Parquet or JSONL (by suffix; others refused); returns the path."""
    fmt = output_format(path)
    with atomic_output(path) as (fs, tmp):
        if fmt == "parquet":
            pq.write_table(table, tmp, filesystem=fs)
        else:
            payload = "".join(json.dumps(_jsonable(r), ensure_ascii=False) + "\n"
                              for r in table.to_pylist()).encode("utf-8")
            if str(path).lower().endswith(".gz"):
                payload = gzip.compress(payload)
            with fs.open_output_stream(tmp, compression=None) as out:
                out.write(payload)
    return str(path)


def write_text(text: str, path: str | os.PathLike) -> str:
    """Write a UTF-8 text file atomically (configs, summaries, pages); returns the path."""
    with atomic_output(path) as (fs, tmp), fs.open_output_stream(tmp, compression=None) as out:
        out.write(text.encode("utf-8"))
    return str(path)


write_pairs = write_table


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, list) and v and isinstance(v[0], tuple) and len(v[0]) == 2:
            v = dict(v)  # map column
        out[k] = v
    return out


def finite(v):
    """``v`` with NaN / ±inf floats replaced by None, so the JSON written is strict."""
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(obj, path: str | os.PathLike) -> str:
    """Write a strict JSON document (NaN → null) atomically (manifests, metrics)."""
    return write_text(json.dumps(finite(obj), indent=2, sort_keys=False, default=str,
                                 allow_nan=False) + "\n", path)
