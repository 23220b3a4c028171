"""``pdray report SCORES [--strategies pd,random,high,mid] --data PAIRS --output DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pdray.errors import PdrayError
from pdray.selection.config import COMPARED, SelectConfig


def _help(name: str) -> str:
    """An option's help: the config field's description and its default (one home)."""
    f = SelectConfig.model_fields[name]
    return f"{f.description}; default {f.default}."


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_cmd(scores: str = typer.Argument(..., help="Scores table or directory of shards."),
                   strategies: str = typer.Option(",".join(COMPARED),
                                                  help="Comma-separated strategies to compare."),
                   budget: float | None = typer.Option(None, help=_help("budget")),
                   gamma: float | None = typer.Option(None, help=_help("gamma")),
                   rho: float | None = typer.Option(None, help="default: the scores manifest's"),
                   length_debias: str | None = typer.Option(
                       None, help="learned | penalty | poe | none (default: the scores "
                       "manifest's)"),
                   seed: int | None = typer.Option(None, help=_help("seed")),
                   data: str | None = typer.Option(None, help="Pairs with ground truth "
                                                      "(enables CP, conflict rate, budget curve)."),
                   output: Path = typer.Option(..., "--output", "-o")):
        """Compare strategies on the same scores: HTML page, PNG plots and metrics.json."""
        from pdray.config import load_config
        from pdray.io import check_output, read_pairs
        from pdray.report import build_report
        from pdray.selection import select
        from pdray.selection.scores import length_term, read_scores, rm_metrics_for

        try:  # every option validated up front by the one typed config (exit 2)
            given = {"budget": budget, "gamma": gamma, "rho": rho,
                     "length_debias": length_debias, "seed": seed}
            cfg = load_config(SelectConfig, None, [], base={k: v for k, v in given.items()
                                                            if v is not None})
            check_output(output, folder=True)
            rho, length_debias = length_term(scores, cfg.rho, cfg.length_debias)
            table = read_scores(scores)
            pairs = read_pairs(data) if data else None
            sels = {s: select(table, s, budget=cfg.budget, gamma=cfg.gamma, rho=rho,
                              seed=cfg.seed, length_debias=length_debias, pairs=pairs,
                              source=scores, pairs_source=data)
                    for s in (x.strip() for x in strategies.split(",")) if s}
            page = build_report(table, sels, output, pairs=pairs, gamma=cfg.gamma, rho=rho,
                                length_debias=length_debias, rm_metrics=rm_metrics_for(scores))
        except PdrayError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2)
        m = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
        for line in m.get("verdict", []):
            typer.echo(line)
        for s, v in m["strategies"].items():
            typer.echo(f"{s:12s} kept {v['kept']:7d}  CP {v.get('cp', float('nan')):.3f}  "
                       f"conflict {v.get('conflict', float('nan')):.3f}  "
                       f"ties {v.get('ties', float('nan')):.3f}  "
                       f"Δlen {v['mean_dlen']:+.2f}")
        if "true_pd_ceiling_cp" in m:
            typer.echo(f"CP ceiling (true_pd): {m['true_pd_ceiling_cp']:.3f}")
        typer.echo(f"report: {page}")
