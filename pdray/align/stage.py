"""The dpo stage of the pipeline: DPO (or DMPO) on each selected subset.

``run(cfg, inputs, out, echo, *, strategies) -> DPOManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``dpo`` section
(:class:`pdray.align.config.DPOConfig`), ``inputs`` the data and select stages' manifests;
``strategies`` the subsets to align on (``run.dpo_strategies``, default every selected one).
``dmpo`` is the DMPO loss (``dpo.loss=dmpo``) on all of D with its PD column, which the select
stage wrote as ``dmpo_input``. Every strategy gets the same DPO settings, except that the
LossDiff-IRM subsets continue from the warmed-up policy θ when the lossdiff stage ran with
``lossdiff.continue_from_warmup`` (the second paper's recipe).

Each policy is measured on D's held-out test split (:mod:`pdray.align.downstream`): accuracy of
its implicit reward against the consensus label (the one number printed, with its 95 %
interval), the same on consensus and conflict pairs, against each pair's own label, and the
mean generated length (AL) of greedy samples on the first ``dpo.eval_sample_prompts`` test
prompts.
"""

from __future__ import annotations

from pathlib import Path

from pdray.align.config import DPOConfig
from pdray.align.downstream import headline_line
from pdray.errors import PdrayError
from pdray.io import read_table
from pdray.manifest import StageManifest


class DPOManifest(StageManifest):
    models: dict[str, str]


def run(cfg: DPOConfig, inputs: dict, out: Path, echo, *,
        strategies: list[str]) -> DPOManifest:
    """Train one policy per strategy under ``out/<strategy>/``, with the held-out
    implicit-reward accuracy of each (on D's test split, when it has pairs)."""
    from pdray.align import train_dpo  # torch, trl, ray

    sel, warm = inputs["select"], inputs.get("lossdiff")
    test = read_table(inputs["data"].test)
    models, metrics = {}, {}
    for strategy in strategies:
        run_cfg = continued(cfg, strategy, warm)
        if strategy == "dmpo":
            pairs_path = sel.dmpo_input
            run_cfg = cfg.model_copy(update={"loss": "dmpo"})
        elif strategy in sel.selections:
            pairs_path = str(Path(sel.selections[strategy]) / "selected.parquet")
        else:
            raise PdrayError(f"dpo strategy {strategy!r} was not selected "
                             f"(select.strategies: {sel.strategies})")
        echo(f"[dpo] {run_cfg.loss} on '{strategy}' ({pairs_path})")
        res = train_dpo(pairs_path, run_cfg, str(out / strategy), echo=echo)
        models[strategy] = str(res.model_dir)
        m = dict(res.metrics or {})
        if test.num_rows:
            m["heldout"] = heldout(res, test, run_cfg)
            echo(f"[dpo] {strategy}: {headline_line(m['heldout'])}")
        metrics[strategy] = m
    return DPOManifest(dir=str(out), models=models, metrics=metrics)


def continued(cfg: DPOConfig, strategy: str, warm) -> DPOConfig:
    """``cfg``, or for a subset the LossDiff scores chose (its selector reads them) when the
    lossdiff stage asked to continue: DPO from the warmed-up θ against the same reference, for
    ``lossdiff.continue_epochs`` (default ``dpo.epochs``)."""
    from pdray.selection.selectors import NEEDS

    if warm is None or not warm.continue_from_warmup or strategy not in NEEDS \
            or not NEEDS[strategy].logprobs:
        return cfg
    return cfg.model_copy(update={"model": warm.policy, "ref_model": warm.reference,
                                  "epochs": warm.continue_epochs or cfg.epochs})


def heldout(res, test, cfg: DPOConfig) -> dict:
    """The policy's held-out metrics on ``test``: the one evaluation of a trained policy,
    :func:`pdray.align.train.evaluate_policy` (accuracy against the consensus and the own label,
    ``mean_generated_length``)."""
    from pdray.align.train import evaluate_policy

    ref = res.manifest.get("ref_model_dir") or res.manifest.get("ref_model")
    return evaluate_policy(res.model_dir, ref, test, cfg)
