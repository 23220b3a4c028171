"""``pdray eval``: generate with a model on the test sets and judge it against a baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, settings_epilog, stage_config


def register(app: typer.Typer) -> None:
    @app.command("eval", cls=settings_epilog("pdray.eval.config:EvalConfig"))
    def eval_cmd(
        model: str = typer.Option(..., "--model", "-m", help="Target model folder (or hub id)."),
        baseline: str | None = typer.Option(
            None, "--baseline", "-b", help="Baseline model folder, answers file (.jsonl/.parquet "
            "with id, answer) or 'reference' (the set's reference outputs)."),
        sets: str | None = typer.Option(
            None, "--sets", help="Comma-separated test sets (default: the paper's five: "
            "wizardlm,selfinstruct,vicuna,koala,lima; also alpaca_eval, mt_bench)."),
        judge: str | None = typer.Option(None, "--judge", help="openai | rm"),
        judge_model: str | None = typer.Option(
            None, "--judge-model", help="openai: model name; rm: reward-model folder."),
        base_url: str | None = typer.Option(None, "--base-url",
                                               help="OpenAI-compatible endpoint."),
        output: Path = typer.Option(..., "--output", "-o", help="Output directory."),
        limit: int | None = typer.Option(None, "--limit", help="First N prompts per set."),
        max_new_tokens: int | None = typer.Option(None, "--max-new-tokens"),
        config: Path | None = CONFIG_OPTION,
        overrides: list[str] | None = OVERRIDES_ARG,
    ):
        """Pairwise evaluation (App. B.2 judge, both orders): win score (Eq. 19), AW, AL."""
        from pdray.eval import EvalConfig, evaluate, make_judge

        cli = {k: v for k, v in {
            "baseline": baseline, "judge": judge, "judge_model": judge_model,
            "base_url": base_url, "limit": limit, "max_new_tokens": max_new_tokens,
            "sets": [s.strip() for s in sets.split(",") if s.strip()] if sets else None,
        }.items() if v is not None}
        cfg = stage_config(EvalConfig, config, [*(overrides or []),
                                                *(_as_override(k, v) for k, v in cli.items())])
        j = make_judge(cfg)
        try:
            res = evaluate(model, cfg.baseline, cfg.sets, j, output, cfg, echo=typer.echo)
        finally:
            j.close()
        typer.echo(f"wrote {res.judgments_path} and {res.summary_path}")


def _as_override(key: str, value) -> str:
    import json

    return f"{key}={json.dumps(value)}"
