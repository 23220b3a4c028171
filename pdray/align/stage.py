"""The dpo stage of the pipeline: DPO (or DMPO) on each selected subset.

``run(cfg, inputs, out, echo, *, strategies) -> DPOManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``dpo`` section
(:class:`pdray.align.config.DPOConfig`), ``inputs`` the data and select stages' manifests;
``strategies`` the subsets to align on (``run.dpo_strategies``, default every selected one).
``dmpo`` is the DMPO loss (``dpo.loss=dmpo``) on all of D with its PD column, which the select
stage wrote as ``dmpo_input``.
"""

from __future__ import annotations

from pathlib import Path

from pdray.align.config import DPOConfig
from pdray.errors import PdrayError
from pdray.io import read_table
from pdray.manifest import StageManifest


class DPOManifest(StageManifest):
    models: dict[str, str]


def run(cfg: DPOConfig, inputs: dict, out: Path, echo, *,
        strategies: list[str]) -> DPOManifest:
    """Train one policy per strategy under ``out/<strategy>/``, with the held-out
    implicit-reward accuracy of each (on D's test split, when it has pairs)."""
    from pdray.align import implicit_reward_accuracy, train_dpo  # torch, trl, ray

    sel = inputs["select"]
    test = read_table(inputs["data"].test)
    models, metrics = {}, {}
    for strategy in strategies:
        run_cfg = cfg
        if strategy == "dmpo":
            pairs_path = sel.dmpo_input
            run_cfg = cfg.model_copy(update={"loss": "dmpo"})
        elif strategy in sel.selections:
            pairs_path = str(Path(sel.selections[strategy]) / "selected.parquet")
        else:
            raise PdrayError(f"dpo strategy {strategy!r} was not selected "
                             f"(select.strategies: {sel.strategies})")
        echo(f"[dpo] {run_cfg.loss} on '{strategy}' ({pairs_path})")
        res = train_dpo(pairs_path, run_cfg, str(out / strategy))
        models[strategy] = str(res.model_dir)
        m = dict(res.metrics or {})
        if test.num_rows:
            acc = implicit_reward_accuracy(res.model_dir, res.manifest.get("ref_model_dir")
                                           or res.manifest.get("ref_model"), test,
                                           beta=run_cfg.beta, max_length=run_cfg.max_length)
            m["heldout"] = acc
            echo(f"[dpo] {strategy}: held-out implicit-reward accuracy "
                 f"{acc.get('accuracy', float('nan')):.3f}")
        metrics[strategy] = m
    return DPOManifest(dir=str(out), models=models, metrics=metrics)
