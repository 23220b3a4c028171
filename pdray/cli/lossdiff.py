"""``pdray lossdiff warmup|score|select``: the second seed's selector (LossDiff-IRM).

``pdray select --strategy lossdiff_irm SCORES`` does the band selection through the selection
core from the same score columns.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import PAIRS_HELP, echo_kv
from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.selection.config import LOSSDIFF_KEEP

sub = typer.Typer(name="lossdiff", no_args_is_help=True,
                  help="LossDiff-IRM (second seed): warm-up DPO, log-prob scores, band selection. "
                       "`pdray select --strategy lossdiff_irm SCORES` selects through the "
                       "selection core from the same scores.")
CONFIG = "pdray.lossdiff.config:LossDiffConfig"


def _warmup(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.lossdiff import warmup

    table = read_pairs(inputs["pairs"])
    if cfg.reference == "tiny":
        from pdray.models.tiny import build_tiny_causal_lm

        texts = table["prompt"].to_pylist()[:500] + table["chosen"].to_pylist()[:500]
        cfg.reference = str(build_tiny_causal_lm(output / "reference", texts=texts))
    res = warmup(table, cfg, output, echo=echo)
    echo_kv("warm-up done", {"policy": res.policy_dir, "aux": res.aux_dir,
                             "reference": res.reference, "train pairs": len(res.train_ids),
                             "validation pairs": len(res.val_ids)})


stage_verb(
    sub, "warmup", config=CONFIG, run=_warmup,
    inputs=[Input("pairs", PAIRS_HELP)],
    shortcuts=[Shortcut("reference", help="Reference/SFT model folder ('tiny' builds a tiny "
                        "one).")],
    help="""Split off a seeded validation set; DPO-train the policy on the rest and the
    auxiliary model on the validation set (both from the reference). Writes OUTPUT/policy,
    OUTPUT/aux.""")


def _score(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.lossdiff import score_logprobs

    score_logprobs(read_pairs(inputs["pairs"]), inputs["policy"], inputs["reference"],
                   inputs["aux"], output, cfg, echo=echo, verbose=inputs["verbose"])


stage_verb(
    sub, "score", config=CONFIG, run=_score, needs_ray=True, verbose=True,
    output_help="Scores directory.",
    inputs=[Input("pairs", PAIRS_HELP),
            Input("policy", "Warmed-up policy θ folder.", option="--policy"),
            Input("reference", "Reference model π_ref folder.", option="--reference"),
            Input("aux", "Auxiliary model θ_val folder.", option="--aux")],
    shortcuts=[Shortcut("num_actors", int), Shortcut("batch_tokens", int),
               Shortcut("beta", float)],
    help="""Log-probs of chosen/rejected under policy, reference and auxiliary models (Ray
    Data), LossDiff and IRM per pair: OUTPUT/shards/*.parquet, failures.parquet,
    manifest.json.""")


def _select(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.io import read_table
    from pdray.lossdiff import lossdiff_irm_selection, read_logprob_scores
    from pdray.lossdiff.hybrid import compare, format_comparison
    from pdray.lossdiff.report import write_report
    from pdray.selection import write_selection

    low, high, data, pd = inputs["low"], inputs["high"], inputs["data"], inputs["pd"]
    table = read_logprob_scores(inputs["scores"])
    pairs = read_pairs(data) if data else None
    sel = lossdiff_irm_selection(table, low, high, keep_rate=inputs["keep_rate"], pairs=pairs)
    write_selection(sel.result, output)
    low, high = sel.result.manifest["info"]["band"]
    echo(f"lossdiff_irm: selected {len(sel.selected_ids)} of {table.num_rows} pairs "
         f"(keep rate {sel.keep_rate:.1%}, band {low:.3f}–{high:.3f}) -> {output}")
    if inputs["report"]:
        pd_table = None
        if pd:
            p = Path(pd)
            pd_table = read_table(p / "selected.parquet" if p.is_dir() else p)
        cmp = compare(table, pd_table, pairs, budget=inputs["budget"], low=low, high=high)
        write_report(table, sel, output / "report", comparison=cmp)
        echo(format_comparison(cmp))
        echo(f"report: {output / 'report' / 'report.json'}")


stage_verb(
    sub, "select", run=_select,
    inputs=[Input("scores", "Scores directory or .parquet (pdray lossdiff score)."),
            Input("low", "Lower percentile of each band (with --high; default: the band "
                  "that keeps --keep-rate).", option="--low", type=float, default=None),
            Input("high", "Upper percentile of each band.", option="--high", type=float,
                  default=None),
            Input("keep_rate", "Share of the scored pairs the default band keeps (the "
                  "paper: 50–64 %).", option="--keep-rate", type=float,
                  default=LOSSDIFF_KEEP),
            Input("data", "Canonical pairs: write the full selected pairs (ready for DPO) and, "
                  "with ground truth, CP in the report.", option="--data", default=None),
            Input("pd", "Selection/table with id, pd: adds PD alone and the PD×IRM hybrids to "
                  "the report.", option="--pd", default=None),
            Input("budget", "λ for PD and the hybrids.", option="--budget", type=float,
                  default=0.3),
            Input("report", option="--report/--no-report", type=bool, default=True)],
    help="""Keep pairs inside the low-high percentile band of LossDiff AND of IRM; writes
    OUTPUT/selected.parquet, manifest.json (keep rate) and a report (JSON + PNG).""")


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="lossdiff")
