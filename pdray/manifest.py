"""The base of every stage's typed manifest: what a stage's ``run`` returns, what
:func:`pdray.pipeline.protocol.run_stage` writes (``_stage.json``, atomically, last) and what the
stages that read it receive. Each stage declares its own manifest beside its ``run``, in
``pdray/<stage>/stage.py`` (``DataManifest`` … ``ReportManifest``).

A manifest names the files a stage wrote (paths as strings, so it round-trips through JSON) and
the few values later stages need. ``extra="forbid"``: a build that returns an unknown key, or a
``_stage.json`` from another pdray version whose keys differ, fails validation instead of being
half-read; :func:`load_manifest` turns the latter into "not finished" so the stage is rebuilt.
``docs/CONTRACTS.md`` ("Pipeline stages") lists the same fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

BOOKKEEPING = ("stage", "key", "finished_at", "inputs")
"""Keys of ``_stage.json`` written by the cache, not by the stage (see ``StageCache.mark``)."""


class StageManifest(BaseModel):
    """Fields every stage has: its output directory and the metrics sent to the tracker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: str
    metrics: dict[str, Any] = {}

    def to_json(self) -> dict:
        return self.model_dump(mode="json")


def load_manifest(kind: type[StageManifest], record: dict) -> tuple[StageManifest | None, str]:
    """``(manifest, "")`` from a ``_stage.json`` record, or ``(None, why)`` when the record does
    not match ``kind`` (a marker from another version, or edited by hand)."""
    try:
        return kind.model_validate({k: v for k, v in record.items() if k not in BOOKKEEPING}), ""
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "manifest"
        return None, f"{where}: {err.get('msg', 'invalid')}"
