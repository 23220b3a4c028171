"""``pdray lossdiff warmup|score|select``: the second seed's selector (LossDiff-IRM).

``pdray select --strategy lossdiff_irm SCORES`` does the band selection through the selection
core from the same score columns.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, echo_kv, settings_epilog, stage_config
from pdray.selection.config import BAND

sub = typer.Typer(name="lossdiff", no_args_is_help=True,
                  help="LossDiff-IRM (second seed): warm-up DPO, log-prob scores, band selection. "
                       "`pdray select --strategy lossdiff_irm SCORES` selects through the "
                       "selection core from the same scores.")


def _cfg(config, overrides, **extra):
    from pdray.lossdiff import LossDiffConfig

    ov = list(overrides or []) + [f"{k}={v}" for k, v in extra.items() if v is not None]
    return stage_config(LossDiffConfig, config, ov)


@sub.command("warmup", cls=settings_epilog("pdray.lossdiff.config:LossDiffConfig"))
def warmup_cmd(pairs: str = typer.Argument(..., help="Canonical pairs (.parquet/.jsonl)."),
               output: Path = typer.Option(..., "--output", "-o"),
               reference: str | None = typer.Option(None, help="Reference/SFT model folder "
                                                       "('tiny' builds a tiny one)."),
               config: Path | None = CONFIG_OPTION,
               overrides: list[str] | None = OVERRIDES_ARG):
    """Split off a seeded validation set; DPO-train the policy on the rest and the auxiliary
    model on the validation set (both from the reference). Writes OUTPUT/policy, OUTPUT/aux."""
    from pdray.io import read_pairs
    from pdray.lossdiff import warmup

    cfg = _cfg(config, overrides, reference=reference)
    table = read_pairs(pairs)
    if cfg.reference == "tiny":
        from pdray.models.tiny import build_tiny_causal_lm

        texts = table["prompt"].to_pylist()[:500] + table["chosen"].to_pylist()[:500]
        cfg.reference = str(build_tiny_causal_lm(output / "reference", texts=texts))
    res = warmup(table, cfg, output, echo=typer.echo)
    echo_kv("warm-up done", {"policy": res.policy_dir, "aux": res.aux_dir,
                             "reference": res.reference, "train pairs": len(res.train_ids),
                             "validation pairs": len(res.val_ids)})


@sub.command("score", cls=settings_epilog("pdray.lossdiff.config:LossDiffConfig"))
def score_cmd(pairs: str = typer.Argument(..., help="Canonical pairs (.parquet/.jsonl)."),
              policy: str = typer.Option(..., help="Warmed-up policy θ folder."),
              reference: str = typer.Option(..., help="Reference model π_ref folder."),
              aux: str = typer.Option(..., help="Auxiliary model θ_val folder."),
              output: Path = typer.Option(..., "--output", "-o", help="Scores directory."),
              num_actors: int | None = typer.Option(None),
              batch_tokens: int | None = typer.Option(None),
              beta: float | None = typer.Option(None),
              verbose: bool = typer.Option(False, "--verbose", help="Ray's own worker log "
                                           "lines and bars on the terminal (default: "
                                           "OUTPUT/logs/)"),
              config: Path | None = CONFIG_OPTION,
              overrides: list[str] | None = OVERRIDES_ARG):
    """Log-probs of chosen/rejected under policy, reference and auxiliary models (Ray Data),
    LossDiff and IRM per pair: OUTPUT/shards/*.parquet, failures.parquet, manifest.json."""
    from pdray.io import read_pairs
    from pdray.lossdiff import score_logprobs
    from pdray.raysetup import init_ray

    cfg = _cfg(config, overrides, num_actors=num_actors, batch_tokens=batch_tokens, beta=beta)
    init_ray(quiet=not verbose)
    score_logprobs(read_pairs(pairs), policy, reference, aux, output, cfg, echo=typer.echo,
                   verbose=verbose)


@sub.command("select")
def select_cmd(scores: str = typer.Argument(..., help="Scores directory or .parquet "
                                            "(pdray lossdiff score)."),
               output: Path = typer.Option(..., "--output", "-o"),
               low: float = typer.Option(BAND[0], help="Lower percentile of each band."),
               high: float = typer.Option(BAND[1], help="Upper percentile of each band."),
               data: str | None = typer.Option(None, help="Canonical pairs: write the full "
                                                  "selected pairs (ready for DPO) and, with "
                                                  "ground truth, CP in the report."),
               pd: str | None = typer.Option(None, help="Selection/table with id, pd: adds "
                                                "PD alone and the PD×IRM hybrids to the report."),
               budget: float = typer.Option(0.3, help="λ for PD and the hybrids."),
               report: bool = typer.Option(True, "--report/--no-report")):
    """Keep pairs inside the low-high percentile band of LossDiff AND of IRM; writes
    OUTPUT/selected.parquet, manifest.json (keep rate) and a report (JSON + PNG)."""
    from pdray.io import read_pairs, read_table
    from pdray.lossdiff import read_logprob_scores, select_lossdiff_irm
    from pdray.lossdiff.hybrid import compare, format_comparison
    from pdray.lossdiff.report import write_report
    from pdray.selection import write_selection

    table = read_logprob_scores(scores)
    pairs = read_pairs(data) if data else None
    sel = select_lossdiff_irm(table, low, high, pairs=pairs)
    write_selection(sel.result, output)
    typer.echo(f"lossdiff_irm: selected {len(sel.selected_ids)} of {table.num_rows} pairs "
               f"(keep rate {sel.keep_rate:.1%}) -> {output}")
    if report:
        pd_table = None
        if pd:
            p = Path(pd)
            pd_table = read_table(p / "selected.parquet" if p.is_dir() else p)
        cmp = compare(table, pd_table, pairs, budget=budget, low=low, high=high)
        write_report(table, sel, output / "report", comparison=cmp)
        typer.echo(format_comparison(cmp))
        typer.echo(f"report: {output / 'report' / 'report.json'}")


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="lossdiff")
