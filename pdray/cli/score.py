"""``pdray score PAIRS --rm RM_DIR --output SCORES_DIR``: the score stage
(:mod:`pdray.scoring.stage`) on a pairs file and a reward-model set given by path."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import PAIRS_HELP
from pdray.cli.verbs import Input, Shortcut, stage_verb


def _score(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.cli.common import verbose_env
    from pdray.data.stage import DataManifest
    from pdray.rm.stage import RMManifest
    from pdray.scoring import stage

    given = {"data": DataManifest.from_pairs(inputs["pairs"], read=False),
             "rm": RMManifest.from_path(inputs["rm"])}
    with verbose_env(inputs["verbose"]):   # --verbose: PDRAY_VERBOSE=1 while the stage runs
        stage.run(cfg, given, output, echo, flat=True)


def register(app: typer.Typer) -> None:
    stage_verb(
        # no needs_ray: score_pairs starts Ray itself, after checking its inputs
        app, "score", config="pdray.scoring.config:ScoreConfig", run=_score, verbose=True,
        inputs=[Input("pairs", PAIRS_HELP),
                Input("rm", "Reward-model set (pdray rm train).", option="--rm")],
        shortcuts=["backend", Shortcut("num_actors", int), Shortcut("batch_tokens", int)],
        help="""Cross pseudo-rewards: every pair through every aspect's reward model (Ray Data);
        writes the scores table (OUTPUT/shards/*.parquet), failures and a manifest. A local
        Parquet or JSONL input is streamed (never read whole); a progress line (rows,
        rows/s, ETA) at least every 30 s. Re-running skips finished shards whose inputs are
        unchanged. (The LossDiff log-prob scores: `pdray lossdiff score`, on the same
        runner.)""")
