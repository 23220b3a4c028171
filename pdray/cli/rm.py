"""``pdray rm train PAIRS --output RM_DIR [key=value ...]`` and ``pdray rm eval RM_DIR PAIRS
[-o METRICS.json]``, both on the verb factory."""

from __future__ import annotations

from pathlib import Path

import typer

from pdray.cli.common import PAIRS_HELP
from pdray.cli.verbs import Input, stage_verb

rm_app = typer.Typer(help="Per-aspect reward models.", no_args_is_help=True)


def _paper(inputs: dict) -> dict | None:
    from pdray.rm.config import RMConfig

    return RMConfig.paper().model_dump() if inputs["paper"] else None


def _train(cfg, inputs: dict, output: Path, echo) -> None:
    from pdray.data.stage import DataManifest
    from pdray.rm import stage  # torch and trl when it runs

    m = stage.run(cfg, {"data": DataManifest.from_pairs(inputs["pairs"], read=True)}, output,
                  echo)
    echo(f"reward-model set ({cfg.mode}, aspects {', '.join(m.aspects)}) -> {output}")


stage_verb(
    rm_app, "train", config="pdray.rm.config:RMConfig", run=_train, base=_paper, needs_ray=True,
    inputs=[Input("pairs", PAIRS_HELP),
            Input("paper", "Start from the paper's hyper-parameters.", option="--paper/--no-paper",
                  type=bool, default=False)],
    help="""Train one Bradley–Terry reward model per aspect (length-balanced sampling, Eq. 16; a
    length term, Eq. 17: learned per aspect by default, or length_debias=penalty with rho),
    all aspects concurrently on Ray Train, at least min_steps steps with early stopping on the
    held-out loss — or, with train_backbone=false, only the heads on the frozen backbone's
    features (L2 chosen on the dev split). Overrides: backbone=smollm2, train_backbone=false,
    mode=multi_head, min_steps=100, ...""")


def _eval(cfg, inputs: dict, output: Path | None, echo) -> None:
    from pdray.data.loaders import read_pairs
    from pdray.io import write_json
    from pdray.rm.metrics import evaluate_set  # transformers

    table = read_pairs(inputs["pairs"], min_aspects=1)
    m = evaluate_set(str(inputs["rm_dir"]), table, max_length=inputs["max_length"],
                     trust_remote_code=inputs["trust_remote_code"], echo=echo, write=False)
    aspects = list(m.get("cross_accuracy", {}))
    if aspects:
        cols = list(m["cross_accuracy"][aspects[0]])
        echo("accuracy (row: model, column: data) " + " ".join(f"{c[:12]:>12}" for c in cols))
        for k in aspects:
            echo(f"{k[:36]:<36} " + " ".join(f"{m['cross_accuracy'][k][c]:>12.3f}" for c in cols))
    if output:
        write_json(m, output)
        echo(f"metrics -> {output}")


stage_verb(
    rm_app, "eval", run=_eval, output_kind=None, output_required=False,
    output_help="Write the metrics JSON here.",
    inputs=[Input("rm_dir", "A reward-model set (rm_set.json).", type=Path),
            Input("pairs", "Held-out canonical pairs (.parquet/.jsonl)."),
            Input("max_length", "Default: the set's.", option="--max-length", type=int,
                  default=None),
            Input("trust_remote_code", "Allow custom model code.",
                  option="--trust-remote-code/--no-trust-remote-code", type=bool,
                  default=False)],
    help="""Pairwise accuracy of every aspect's model on its own pairs, the cross-aspect
    accuracy and conflict matrices (paper Fig. B.3) and the margin~Δlen correlation.""")


def register(app: typer.Typer) -> None:
    app.add_typer(rm_app, name="rm")
