"""``pdray select SCORES [--strategy S] [--budget λ] [--gamma γ] --output DIR [--data PAIRS]``.

Settings: ``--config`` YAML (a :class:`pdray.selection.config.SelectConfig`) < the options
given on the command line < ``key.sub=value`` overrides after SCORES.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import settings_epilog

from pdray.errors import PdrayError
from pdray.selection.config import SelectConfig, default


def _help(name: str) -> str:
    """An option's help: the config field's description and its default (one home)."""
    f = SelectConfig.model_fields[name]
    return f"{f.description}; default {f.default}."


def _fail(e: Exception):
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("select", cls=settings_epilog("pdray.selection.config:SelectConfig"))
    def select_cmd(scores: str = typer.Argument(..., help="Scores table (.parquet) or a "
                                                "directory of Parquet shards."),
                   overrides: list[str] | None = typer.Argument(
                       None, help="Overrides key.sub=value, e.g. options.low=0.25."),
                   strategy: str | None = typer.Option(
                       None, help="pd | random | high | mid | holistic | no_debias | true_pd | "
                       f"band | lossdiff_irm | pd_irm | oracle | overall | all (default "
                       f"{default('strategy')})"),
                   budget: float | None = typer.Option(None, help=_help("budget")),
                   gamma: float | None = typer.Option(None, help=_help("gamma")),
                   rho: float | None = typer.Option(None, help="ρ per token, Eq. 18 (default: "
                                                    "the scores manifest's)."),
                   length_debias: str | None = typer.Option(
                       None, help="learned | penalty | poe | none (default: the scores "
                       "manifest's)"),
                   seed: int | None = typer.Option(None, help=_help("seed")),
                   output: Path = typer.Option(..., "--output", "-o"),
                   data: str | None = typer.Option(None, help="Canonical pairs: write the full "
                                                      "selected pairs (ready for DPO)."),
                   config: Path | None = typer.Option(None, "--config", "-c",
                                                         help="YAML SelectConfig."),
                   option: list[str] | None = typer.Option(None, help="Strategy option "
                                                              "key=value, e.g. low=0.2."),
                   weight: list[str] | None = typer.Option(None, help="Aspect weight "
                                                              "aspect=w for PD (default 1)."),
                   report: bool = typer.Option(False, "--report", help="Also write an HTML "
                                               "report to OUTPUT/report.")):
        """Select pairs with one strategy; writes OUTPUT/selected.parquet and manifest.json."""
        try:
            _run(scores, overrides, strategy, budget, gamma, rho, length_debias, seed, output,
                 data, config, option, weight, report)
        except PdrayError as e:
            _fail(e)


def _run(scores, overrides, strategy, budget, gamma, rho, length_debias, seed, output, data,
         config, option, weight, report) -> None:
    from pdray.config import deep_merge, load_config, parse_override, read_yaml
    from pdray.io import check_output, read_pairs
    from pdray.selection import select, write_selection
    from pdray.selection.scores import read_scores

    base = read_yaml(config) if config is not None else {}
    given = {k: v for k, v in {"strategy": strategy, "budget": budget, "gamma": gamma, "rho": rho,
                               "length_debias": length_debias, "seed": seed}.items()
             if v is not None}
    if report:
        given["report"] = True
    for o in option or []:
        k, v = parse_override(o)
        given.setdefault("options", {})[".".join(k)] = v
    for w in weight or []:
        k, v = parse_override(w)
        given.setdefault("aspect_weights", {})[".".join(k)] = v
    cfg = load_config(SelectConfig, None, overrides or [], base=deep_merge(base, given))
    check_output(output, folder=True)
    table = read_scores(scores)
    pairs = read_pairs(data) if data else None
    kw = cfg.select_kwargs(scores)
    res = select(table, cfg.strategy, pairs=pairs, source=str(scores), pairs_source=data, **kw)
    res.manifest["inputs"] = {"scores": str(scores), "pairs": data}
    write_selection(res, output)
    c = res.manifest["counts"]
    typer.echo(f"{cfg.strategy}: selected {c['selected']} of {c['in']} pairs "
               f"({c['not_selected']} not selected, {c['dropped']} dropped) -> {output}")
    if res.manifest["q"]:
        typer.echo("q_k: " + ", ".join(f"{k}={v:.4g}" for k, v in res.manifest["q"].items()))
    if res.manifest["info"].get("keep_rate") is not None:
        typer.echo(f"keep rate: {res.manifest['info']['keep_rate']:.3f}")
    if cfg.report:
        from pdray.report import build_report

        page = build_report(table, {cfg.strategy: res}, Path(output) / "report", pairs=pairs,
                            gamma=cfg.gamma, rho=kw["rho"], length_debias=kw["length_debias"])
        typer.echo(f"report: {page}")
