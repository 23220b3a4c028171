"""``pdray report SCORES [--strategies pd,random,high,mid] --data PAIRS --output DIR``.

Runs the select stage (every strategy, into ``OUTPUT/selections/``) and then the report stage,
the same two stages as ``pdray run``. Settings: the selection's own config
(:class:`pdray.selection.config.SelectConfig`): ``--config`` YAML < the options given on the
command line < ``key.sub=value`` overrides after SCORES, as for every verb.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pdray.cli.select import MANIFEST_DEFAULT, stage_inputs
from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.selection.config import COMPARED


def _report(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.report import stage as report
    from pdray.selection import stage as select

    names = [s for s in (x.strip() for x in inputs["strategies"].split(",")) if s]
    given = stage_inputs(cfg, inputs)
    stage_cfg = cfg.stage_config(names)
    ran = select.run(stage_cfg, given, output / "selections", lambda *_: None)
    page = report.run(stage_cfg, {**given, "select": ran}, output, lambda *_: None).html
    m = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    for line in m.get("verdict", []):
        echo(line)
    for s, v in m["strategies"].items():
        echo(f"{s:12s} kept {v['kept']:7d}  CP {v.get('cp', float('nan')):.3f}  "
             f"conflict {v.get('conflict', float('nan')):.3f}  "
             f"ties {v.get('ties', float('nan')):.3f}  "
             f"Δlen {v['mean_dlen']:+.2f}")
    if "true_pd_ceiling_cp" in m:
        echo(f"CP ceiling (true_pd): {m['true_pd_ceiling_cp']:.3f}")
    echo(f"report: {page}")


def register(app: typer.Typer) -> None:
    stage_verb(
        app, "report", config="pdray.selection.config:SelectConfig", run=_report,
        one_line_errors=True,
        inputs=[Input("scores", "Scores table or directory of shards."),
                Input("strategies", "Comma-separated strategies to compare.",
                      option="--strategies", default=",".join(COMPARED)),
                Input("data", "Pairs with ground truth (enables CP, conflict rate, budget "
                      "curve).", option="--data", default=None)],
        shortcuts=[Shortcut("budget", float), Shortcut("gamma", float),
                   Shortcut("rho", float, help=f"ρ per token, Eq. 18 {MANIFEST_DEFAULT}."),
                   Shortcut("length_debias", help=f"learned | penalty | poe | none "
                            f"{MANIFEST_DEFAULT}"),
                   Shortcut("seed", int)],
        help="Compare strategies on the same scores (the select stage, then the report stage): "
             "HTML page, PNG plots and metrics.json; the selections in OUTPUT/selections/.")
