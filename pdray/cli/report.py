"""``pdray report SCORES [--strategies pd,random,high,mid] --data PAIRS --output DIR``.

Settings: the selection's own config (:class:`pdray.selection.config.SelectConfig`): ``--config``
YAML < ``key.sub=value`` overrides after SCORES < the options given on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pdray.cli.select import MANIFEST_DEFAULT
from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.selection.config import COMPARED


def _report(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.report import build_report
    from pdray.selection import select
    from pdray.selection.scores import read_scores, rm_metrics_for

    scores, data = inputs["scores"], inputs["data"]
    # the settings `pdray select` uses, less the per-strategy options (several strategies here)
    kw = {k: v for k, v in cfg.select_kwargs(scores).items() if k not in cfg.options}
    table = read_scores(scores)
    pairs = read_pairs(data) if data else None
    sels = {s: select(table, s, pairs=pairs, source=scores, pairs_source=data, **kw)
            for s in (x.strip() for x in inputs["strategies"].split(",")) if s}
    page = build_report(table, sels, output, pairs=pairs, gamma=cfg.gamma, rho=kw["rho"],
                        length_debias=kw["length_debias"], rm_metrics=rm_metrics_for(scores))
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
        help="Compare strategies on the same scores: HTML page, PNG plots and metrics.json.")
