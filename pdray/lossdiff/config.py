"""Typed configuration of the second seed's selector (METHOD.md, "Second seed: LossDiff-IRM").

Every number the method's summaries leave uncertain is a field here: the validation split, the
warm-up DPO settings, β, the percentile band, and the Ray Data scoring resources.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pdray.config import StrictModel
from pdray.errors import ConfigError
from pdray.scoring.config import ActorResources


class WarmupDPO(StrictModel):
    """The warm-up DPO runs (step 1): policy θ on D minus the validation set, auxiliary θ_val on
    the validation set, both through ``pdray.align.train_dpo`` (TRL under Ray Train).

    Paper-scale defaults (1 epoch, lr 5e-7, effective batch 32, warmup 0.1, cosine); tiny CPU
    models need a larger learning rate, set it in the config. Each field maps onto one field of
    :class:`pdray.align.DPOConfig` (:func:`pdray.lossdiff.warmup.align_config`).
    """

    epochs: float = Field(1.0, gt=0, description="passes over each run's pairs (paper: 1)")
    max_steps: int | None = Field(None, gt=0, description="caps the optimiser steps (tests, "
                                  "smoke runs); default: the epochs decide")
    learning_rate: float = Field(5e-7, gt=0, description="AdamW learning rate (paper: 5e-7)")
    batch_size: int = Field(32, ge=1, description="effective batch = per_device_batch_size × "
                            "num_workers × gradient accumulation (must divide evenly)")
    per_device_batch_size: int = Field(8, ge=1, description="pairs per worker and step")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps warming the "
                                "learning rate up")
    lr_scheduler: str = Field("cosine", description="transformers scheduler name")
    max_length: int = Field(1024, ge=8, description="prompt + response tokens (TRL keeps the "
                            "start); also the scoring default")
    seed: int = Field(0, description="training seed")
    bf16: bool | None = Field(None, description="default: on with GPUs")
    use_gpu: bool | None = Field(None, description="train on GPUs (one per worker); default: "
                                 "when scoring does (gpus_per_actor > 0)")
    num_workers: int = Field(1, ge=1, description="Ray Train workers per run")
    cpus_per_worker: float = Field(1.0, gt=0, description="Ray CPUs each training worker holds "
                                   "(a CPU worker runs torch on as many threads)")

    @model_validator(mode="after")
    def _even_batch(self):
        per_step = self.per_device_batch_size * self.num_workers
        if self.batch_size % per_step:
            raise ConfigError(f"warmup.batch_size={self.batch_size} is not a multiple of "
                              f"per_device_batch_size × num_workers = {per_step}")
        return self


class LossDiffConfig(ActorResources):
    """Configuration of the warm-up and the log-prob scoring (the band of step 4 is a selector
    option: ``select.options.lossdiff_irm.low``, default :data:`pdray.selection.config.BAND`)."""

    reference: str | None = Field(None, description="reference / SFT model folder (π_ref; "
                                     "both warm-up runs start from it)")
    policy: str | None = Field(None, description="warmed-up policy θ (set by warm-up)")
    aux: str | None = Field(None, description="auxiliary model θ_val (set by warm-up)")
    trust_remote_code: bool = Field(False, description="run custom model code (off: safe by "
                                    "default)")
    # validation split (step 1)
    val_size: int | None = Field(None, ge=1, description="held-out pairs; wins over val_fraction")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of D held out as the "
                                "validation set (when val_size is not given)")
    split_seed: int = Field(0, description="seed of the validation split")
    stratify_aspect: bool = Field(True, description="draw the validation set per aspect")
    warmup: WarmupDPO = WarmupDPO()
    continue_from_warmup: bool = Field(False, description="the dpo stage aligns the LossDiff "
                                       "subsets (lossdiff_irm, pd_irm) from the warmed-up θ "
                                       "instead of the SFT model, as the second paper does")
    continue_epochs: float | None = Field(None, gt=0, description="epochs of that continued "
                                          "DPO (the paper's summaries: 2); default: dpo.epochs")
    # scores (steps 2-3)
    beta: float = Field(0.1, gt=0, description="β of ℓ_DPO and of the implicit reward margin")
    # Ray Data scoring (num_actors, cpus_per_actor, gpus_per_actor: ActorResources, as for
    # score; the warm-up's are warmup.cpus_per_worker)
    batch_tokens: int = Field(8192, ge=16, description="padded tokens per forward pass")
    max_length: int = Field(1024, ge=8, description="prompt + response tokens per sequence, "
                            "truncated as TRL does (default: warmup.max_length, so the scores "
                            "see the tokens the warm-up optimised)")
    shard_rows: int = Field(256, ge=1, description="pairs per Ray Data block / output shard")
    max_restarts: int = Field(2, ge=0, description="restarts of a crashed scoring actor")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="weights dtype of the three scored models")

    @model_validator(mode="before")
    @classmethod
    def _scoring_length(cls, data):
        """``max_length`` not given: the warm-up's (``warmup.max_length``)."""
        if isinstance(data, dict) and "max_length" not in data:
            w = data.get("warmup")
            w_len = w.get("max_length") if isinstance(w, dict) else getattr(w, "max_length", None)
            if w_len is not None:
                data = {**data, "max_length": w_len}
        return data
