"""Any JSONL/Parquet file or Hugging Face hub dataset, with column names given in config."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator

from pdray.data.result import (
    LoadResult,
    RowIssues,
    id_problem,
    require_text,
    stable_id,
    text_problem,
)
from pdray.data.source_rows import SourceRows
from pdray.errors import ConfigError
from pdray.io import exists
from pdray.schema import pairs_from_rows

CANONICAL = ("id", "aspect", "prompt", "chosen", "rejected", "chosen_overall", "rejected_overall",
             "source")


class _HubRows:
    """Rows of a hub dataset (network access to the hub) or a local ``save_to_disk`` folder."""

    def __init__(self, name: str, split: str, subset: str | None, trust_remote_code: bool,
                 data_files=None):
        self.name, self.split, self.subset, self.trc = name, split, subset, trust_remote_code
        self.data_files, self.n = data_files, 0

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        import datasets

        if self.data_files is not None:  # a builder over files, e.g. "json" + data_files
            ds = datasets.load_dataset(self.name, data_files=self.data_files, split=self.split)
        elif exists(self.name) and not str(self.name).endswith((".jsonl", ".json", ".parquet")):
            ds = datasets.load_from_disk(self.name)
            ds = ds[self.split] if isinstance(ds, datasets.DatasetDict) else ds
        else:
            kwargs = {}
            if self.trc:
                if "trust_remote_code" not in inspect.signature(datasets.load_dataset).parameters:
                    raise ConfigError(f"trust_remote_code: datasets {datasets.__version__} no "
                                      "longer runs dataset scripts; use a Parquet/JSON dataset")
                kwargs["trust_remote_code"] = True
            ds = datasets.load_dataset(self.name, self.subset, split=self.split, **kwargs)
        for i, row in enumerate(ds):
            self.n = i + 1
            yield i, row


def load_generic(path: str, *, columns: dict[str, str] | None = None, aspect: str | None = None,
                 hub: bool = False, split: str = "train", subset: str | None = None,
                 data_files: str | list[str] | None = None, trust_remote_code: bool = False,
                 known_aspects: list[str] | None = None, quarantine: bool = False) -> LoadResult:
    """Map columns to the canonical schema: ``columns`` = {canonical name: source column} for
    id/aspect/prompt/chosen/rejected/chosen_overall/rejected_overall/source; a constant
    ``aspect`` when the data has no aspect column. ``hub=True``: ``path`` is a hub dataset id
    (``datasets.load_dataset(path, subset, split=split)``; a builder such as ``"json"`` with
    ``data_files``) or a local ``save_to_disk`` folder. ``trust_remote_code`` stays off unless
    set."""
    unknown = set(columns or {}) - set(CANONICAL)
    if unknown:
        raise ConfigError(f"columns: unknown canonical name(s) {sorted(unknown)} "
                          f"(known: {', '.join(CANONICAL)})")
    cols = {c: c for c in CANONICAL} | dict(columns or {})
    issues = RowIssues(str(path), quarantine, known_aspects=known_aspects)
    reader = (_HubRows(path, split, subset, trust_remote_code, data_files) if hub
              else SourceRows(path, issues))
    out = []
    for i, obj in reader:
        rec = {}
        for canon in ("prompt", "chosen", "rejected"):
            v = require_text(obj, cols[canon], i, issues)
            if v is None:
                break
            rec[canon] = v
        else:
            a = obj.get(cols["aspect"]) or aspect
            if not a:
                issues.bad(i, cols["aspect"], "no aspect column and no constant aspect given", obj)
                continue
            rid = obj.get(cols["id"])
            if text_problem(a):
                issues.bad(i, cols["aspect"], text_problem(a), obj)
                continue
            if id_problem(rid):
                issues.bad(i, cols["id"], id_problem(rid), obj)
                continue
            if obj.get(cols["source"]) is not None and text_problem(obj[cols["source"]]):
                issues.bad(i, cols["source"], text_problem(obj[cols["source"]]), obj)
                continue
            for canon in ("chosen_overall", "rejected_overall"):
                v = obj.get(cols[canon])
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                      or not math.isfinite(v)):
                    issues.bad(i, cols[canon], f"non-numeric score {v!r}", obj)
                    break
                rec[canon] = None if v is None else float(v)
            else:
                rec["id"] = (str(rid) if rid is not None else
                             f"row-{i:08d}-{stable_id(rec['prompt'], rec['chosen'], rec['rejected'], n=8)}")
                rec["aspect"] = str(a)
                rec["source"] = obj.get(cols["source"]) or str(path)
                if issues.check_pair(i, rec, obj, id_field=cols["id"], aspect_field=cols["aspect"]):
                    out.append(rec)
    table = pairs_from_rows(out)
    return LoadResult(table, issues.dropped, issues.quarantined,
                      issues.counts(reader.n, len(out), pairs_out=len(out)))
