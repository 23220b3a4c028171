"""The report stage of the pipeline: the HTML report of the selections (and of the DPO runs
when they ran).

``run(cfg, inputs, out, echo) -> ReportManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``select`` section
(:class:`pdray.selection.config.SelectStageConfig`; the report has no settings of its own and
reads γ from there), ``inputs`` the data, score, select and dpo stages' manifests (dpo ``None``
when it did not run) and, when the pipeline passes it, the eval stage's.
"""

from __future__ import annotations

from pathlib import Path

from pdray.io import read_table
from pdray.manifest import StageManifest
from pdray.report.html import build_report
from pdray.selection.api import SelectionResult
from pdray.selection.config import SelectStageConfig
from pdray.selection.scores import read_scores, rm_metrics_for


class ReportManifest(StageManifest):
    html: str


def run(cfg: SelectStageConfig, inputs: dict, out: Path, echo) -> ReportManifest:
    """Write ``out/report.html`` with links to every stage manifest it summarises."""
    score, sel, dpo, ev = inputs["score"], inputs["select"], inputs.get("dpo"), inputs.get("eval")
    scores = read_scores(score.scores)
    pairs = read_table(inputs["data"].train)
    selections = {s: SelectionResult.load(d) for s, d in sel.selections.items()}
    links = {f"{name} stage": str(Path(d) / "manifest.json")
             for name, d in sel.selections.items()}
    if dpo:
        links.update({f"dpo: {s}": str(Path(m).parent / "manifest.json")
                      for s, m in dpo.models.items()})
    links["score manifest"] = str(Path(score.scores) / "manifest.json")
    html = build_report(scores, selections, str(out), pairs=pairs, gamma=cfg.gamma,
                        rho=sel.rho, length_debias=sel.length_debias, links=links,
                        rm_metrics=rm_metrics_for(score.scores),
                        data_manifest=inputs["data"].to_json(),
                        dpo_metrics=dpo.metrics if dpo else None,
                        eval_results=ev.results if ev else None)
    echo(f"[report] {html}")
    return ReportManifest(dir=str(out), html=str(html))
