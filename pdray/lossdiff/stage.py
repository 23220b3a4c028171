"""The lossdiff stage of the pipeline: the second seed's model-dependent scores
(METHOD.md, "Second seed"), read by the ``lossdiff_irm`` and ``pd_irm`` selectors.

``run(cfg, inputs, out, echo, *, default_reference) -> LossDiffManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``lossdiff`` section
(:class:`pdray.lossdiff.config.LossDiffConfig`), ``inputs["data"]`` the data stage's manifest;
``default_reference`` is the model the warm-up starts from when ``cfg.reference`` is unset (the
pipeline passes the dpo stage's model, and ``None`` when ``cfg.reference`` is set).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pdray.errors import ConfigError
from pdray.io import read_table
from pdray.lossdiff.config import LossDiffConfig
from pdray.lossdiff.logprob_scores import score_logprobs
from pdray.lossdiff.warmup import warmup
from pdray.manifest import StageManifest


class LossDiffManifest(StageManifest):
    scores: str
    reference: str
    policy: str
    aux: str
    validation: str | None = None       # ids of the validation pairs: never scored or selected
    continue_from_warmup: bool = False
    continue_epochs: float | None = None


def run(cfg: LossDiffConfig, inputs: dict, out: Path, echo, *,
        default_reference: str | None = None) -> LossDiffManifest:
    """Warm-up DPO of θ on D minus a validation set and of θ_val on it, then LossDiff and IRM
    of every pair outside the validation set (the log-prob scorer on the scoring runner): the
    pairs that trained θ_val are never scored, so no selector can keep them."""
    from pdray.align.train import resolve_policy  # torch, trl

    pairs = read_table(inputs["data"].train)
    if cfg.reference is None:
        if default_reference is None:
            raise ConfigError("lossdiff.reference is not set and no default reference was "
                              "given (the pipeline passes dpo.model)")
        texts = pairs["prompt"].to_pylist()[:1000] + pairs["chosen"].to_pylist()[:1000]
        cfg = cfg.model_copy(update={
            "reference": resolve_policy(default_reference, out / "_base", texts)})
    w = warmup(pairs, cfg, out / "warmup", echo=echo)
    val = pc.is_in(pairs["id"], value_set=pa.array(w.val_ids, pairs["id"].type))
    score_logprobs(pairs.filter(pc.invert(val)), str(w.policy_dir), cfg.reference,
                   str(w.aux_dir), out / "scores", cfg, echo=echo)
    return LossDiffManifest(
        dir=str(out), scores=str(out / "scores"), reference=cfg.reference,
        policy=str(w.policy_dir), aux=str(w.aux_dir),
        validation=str(out / "warmup" / "val_ids.parquet"),
        continue_from_warmup=cfg.continue_from_warmup, continue_epochs=cfg.continue_epochs,
        metrics={"warmup_policy_loss": w.manifest["policy_metrics"].get("train_loss"),
                 "warmup_aux_loss": w.manifest["aux_metrics"].get("train_loss")})
