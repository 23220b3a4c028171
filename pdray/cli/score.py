"""``pdray score PAIRS --rm RM_DIR --output SCORES_DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, settings_epilog, stage_config


def register(app: typer.Typer) -> None:
    @app.command("score", cls=settings_epilog("pdray.scoring.config:ScoreConfig"))
    def score_cmd(pairs: str = typer.Argument(..., help="Canonical pairs (.parquet/.jsonl)."),
                  rm: str = typer.Option(..., "--rm", help="Reward-model set (pdray rm train)."),
                  output: Path = typer.Option(..., "--output", "-o"),
                  backend: Optional[str] = typer.Option(None, help="hf | vllm"),
                  num_actors: Optional[int] = typer.Option(None),
                  batch_tokens: Optional[int] = typer.Option(None),
                  verbose: bool = typer.Option(False, "--verbose", help="Ray's own worker "
                                               "log lines and bars on the terminal (default: "
                                               "OUTPUT/logs/)"),
                  config: Optional[Path] = CONFIG_OPTION,
                  overrides: Optional[list[str]] = OVERRIDES_ARG):
        """Cross pseudo-rewards: every pair through every aspect's reward model (Ray Data);
        writes the scores table (OUTPUT/shards/*.parquet), failures and a manifest. A Parquet
        input is streamed (never read whole); a progress line (rows, rows/s, ETA) at least
        every 30 s. Re-running skips finished shards whose inputs are unchanged. (The LossDiff
        log-prob scores: `pdray lossdiff score`, on the same runner.)"""
        from pdray.io import check_output
        from pdray.raysetup import init_ray
        from pdray.scoring import ScoreConfig, score_pairs

        extra = [f"{k}={v}" for k, v in (("backend", backend), ("num_actors", num_actors),
                                        ("batch_tokens", batch_tokens)) if v is not None]
        cfg = stage_config(ScoreConfig, config, list(overrides or []) + extra)
        check_output(output, folder=True)   # before Ray starts
        init_ray(quiet=not verbose)
        score_pairs(pairs, rm, str(output), cfg, echo=typer.echo, verbose=verbose)
