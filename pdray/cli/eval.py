"""``pdray eval``: generate with a model on the test sets and judge it against a baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.verbs import Input, Shortcut, stage_verb


def _sets(text: str) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] or None


def _eval(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.eval import evaluate, make_judge

    j = make_judge(cfg)
    try:
        res = evaluate(inputs["model"], cfg.baseline, cfg.sets, j, output, cfg, echo=echo)
    finally:
        j.close()
    echo(f"wrote {res.judgments_path} and {res.summary_path}")


def register(app: typer.Typer) -> None:
    stage_verb(
        app, "eval", config="pdray.eval.config:EvalConfig", run=_eval,
        output_help="Output directory.",
        inputs=[Input("model", "Target model folder (or hub id).", option="--model", short="-m")],
        shortcuts=[
            Shortcut("baseline", short="-b", help="Baseline model folder, answers file "
                     "(.jsonl/.parquet with id, answer) or 'reference' (the set's reference "
                     "outputs)."),
            Shortcut("sets", convert=_sets, help="Comma-separated test sets (default: the "
                     "paper's five: wizardlm,selfinstruct,vicuna,koala,lima; also alpaca_eval, "
                     "mt_bench)."),
            Shortcut("judge", help="openai | rm"),
            Shortcut("judge_model", help="openai: model name; rm: reward-model folder."),
            Shortcut("base_url", help="OpenAI-compatible endpoint."),
            Shortcut("limit", int, help="First N prompts per set."),
            Shortcut("max_new_tokens", int)],
        help="Pairwise evaluation (App. B.2 judge, both orders): win score (Eq. 19), AW, AL.")
