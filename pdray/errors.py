"""Errors that tell the user exactly what is wrong and where (file, row, field)."""

from __future__ import annotations


class PdrayError(Exception):
    """Base class of every error pdray raises on purpose (shown without a traceback by the CLI)."""


class ConfigError(PdrayError):
    """A configuration key or value is invalid."""


class DataError(PdrayError):
    """A row of input data is malformed.

    The message always names the file, the row (0-based) and the field when they are known,
    in one line: ``pairs.jsonl: row 17, field 'chosen': empty text``.
    """

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 field: str | None = None):
        self.file, self.row, self.field, self.reason = file, row, field, message
        super().__init__(format_location(file, row, field) + message)


def format_location(file: str | None, row: int | None, field: str | None) -> str:
    parts = []
    if file:
        parts.append(str(file))
    loc = []
    if row is not None:
        loc.append(f"row {row}")
    if field is not None:
        loc.append(f"field '{field}'")
    if loc:
        parts.append(", ".join(loc))
    return (": ".join(parts) + ": ") if parts else ""


class StorageError(PdrayError):
    """Reading or writing a file failed for a reason outside the data (a folder that is a file,
    permissions, a full disk): one line naming the path, ``out/pairs.parquet: cannot write: No
    space left on device``."""

    def __init__(self, message: str, *, path: str | None = None):
        self.path, self.reason = path, message
        super().__init__(format_location(path, None, None) + message)


def os_reason(e: BaseException) -> str:
    """A one-line reason for an ``OSError`` (pyarrow's carry a "Detail: …" tail)."""
    if isinstance(e, OSError) and e.strerror and not str(e.strerror).startswith(("Cannot", "Failed")):
        return str(e.strerror)
    msg = str(e)
    if "Detail:" in msg:
        msg = msg.split("Detail:")[-1].strip()
        if msg.startswith("[errno"):
            msg = msg.split("]", 1)[-1].strip() or msg
    return " ".join(msg.split()) or type(e).__name__
