"""The report stage of the pipeline: the HTML report of the selections (and of the DPO runs
when they ran).

``run(cfg, inputs, out, echo) -> ReportManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``select`` section
(:class:`pdray.selection.config.SelectStageConfig`; the report has no settings of its own),
``inputs`` the data, score, select and dpo stages' manifests (data ``None`` when a verb has no
pairs, dpo ``None`` when it did not run) and, when the pipeline passes it, the eval stage's.
``pdray report`` runs the select stage and then this one.

The PD shown is the select stage's (``SelectManifest.pd``, ``q``, ``length``, ``gamma``):
the report reads it and computes no PD of its own.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from pdray.errors import DataError, PdrayError
from pdray.io import read_table
from pdray.manifest import StageManifest
from pdray.report.html import build_report
from pdray.selection.api import SelectionResult
from pdray.selection.config import SelectStageConfig
from pdray.selection.pd import recorded_pd
from pdray.selection.scores import read_scores, rm_metrics_for


class ReportManifest(StageManifest):
    html: str


def ranked_pd(scores, sel):
    """The select stage's PD (:class:`pdray.selection.stage.SelectManifest`), aligned with the
    rows of ``scores`` (a scored row it has no PD for is a one-line error)."""
    if sel.pd is None:
        raise PdrayError(f"no PD to report: the selection in {sel.dir} could not compute one "
                         "(PD needs at least two aspects)")
    table = read_table(sel.pd)
    idx = pc.index_in(scores["id"], value_set=table["id"])
    if idx.null_count:
        i = pc.indices_nonzero(pc.is_null(idx)).to_pylist()[0]
        raise DataError(f"scored pair {scores['id'][i].as_py()!r} has no PD in the selection "
                        f"({idx.null_count} such rows): the scores changed after selecting",
                        file=sel.pd, row=i, field="id")
    pd = table["pd"].take(idx).to_numpy(zero_copy_only=False)
    return recorded_pd(scores, pd, sel.q, sel.length)


def run(cfg: SelectStageConfig, inputs: dict, out: Path, echo) -> ReportManifest:
    """Write ``out/report.html`` with links to every stage manifest it summarises."""
    score, sel, dpo, ev = inputs["score"], inputs["select"], inputs.get("dpo"), inputs.get("eval")
    data = inputs.get("data")
    scores = read_scores(score.scores)
    pairs = read_table(data.train) if data is not None else None
    selections = {s: SelectionResult.load(d) for s, d in sel.selections.items()}
    links = {f"{name} stage": str(Path(d) / "manifest.json")
             for name, d in sel.selections.items()}
    if dpo:
        links.update({f"dpo: {s}": str(Path(m).parent / "manifest.json")
                      for s, m in dpo.models.items()})
    links["score manifest"] = str(Path(score.scores) / "manifest.json")
    html = build_report(scores, selections, str(out), ranked=ranked_pd(scores, sel),
                        length=sel.length, gamma=sel.gamma, pairs=pairs, links=links,
                        rm_metrics=rm_metrics_for(score.scores),
                        data_manifest=data.to_json() if data is not None else None,
                        dpo_metrics=dpo.metrics if dpo else None,
                        eval_results=ev.results if ev else None)
    echo(f"[report] {html}")
    return ReportManifest(dir=str(out), html=str(html))
