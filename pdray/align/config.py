"""DPO / DMPO configuration (METHOD.md "DPO and DMPO") and its mapping to TRL's arguments
(:func:`trl_args`; ``trainer`` passes any other ``trl.DPOConfig`` argument through)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from pdray.trainer_args import (
    WithTrainerArgs,
    check_trainer_args,
    checked_before,
    deepspeed_config,
    resolve_bf16,
)


class DPOConfig(WithTrainerArgs):
    model: str = Field("tiny", description="HF folder or hub id, 'tiny' or 'smollm2'")
    ref_model: str | None = Field(None, description="default: a frozen copy of model")
    loss: Literal["dpo", "dmpo"] = Field("dpo", description="dpo (Eq. 2) or dmpo (Eq. 39, reads "
                                         "the pairs' pd column)")
    beta: float = Field(0.1, gt=0, description="β of the DPO loss (the paper gives no value: 0.1 is pdray's choice, "
                      "TRL's default)")
    kappa: int | None = Field(None, ge=1, description="DMPO κ (default: number of aspects)")
    epochs: float = Field(1.0, gt=0, description="passes over the pairs (the paper: 1)")
    max_steps: int | None = Field(None, gt=0, description="caps the optimizer steps "
                                  "(default: epochs decide)")
    lr: float = Field(5e-7, gt=0, description="AdamW learning rate (the paper: 5e-7)")
    batch_size: int = Field(32, ge=1, description="per device")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps warming the "
                                "learning rate up (the paper: 0.1)")
    scheduler: str = Field("cosine", description="transformers learning-rate scheduler name")
    max_length: int = Field(1024, ge=8, description="prompt + response tokens (TRL truncates)")
    max_prompt_length: int | None = Field(None, ge=1, description="keep the last N prompt tokens")
    num_workers: int = Field(1, ge=1, description="Ray Train workers (data parallel)")
    cpus_per_worker: float = Field(0.5, gt=0, description="Ray CPUs each worker holds; a CPU "
                                   "worker runs torch on as many threads (rounded, at least 1)")
    use_gpu: bool = Field(False, description="one GPU per worker")
    bf16: bool | None = Field(None, description="default: on with GPUs")
    deepspeed: Literal["zero2", "zero3"] | dict[str, Any] | None = Field(
        None, description="DeepSpeed ZeRO stage, or a full DeepSpeed config")
    lora: dict[str, Any] | None = Field(None, description="peft LoraConfig kwargs")
    precompute_ref_log_probs: bool = Field(False, description="reference log-probs once, "
                                           "before training (frees the reference model)")
    gradient_checkpointing: bool = Field(False, description="recompute activations (less "
                                         "memory, more time)")
    seed: int = Field(0, description="seed of the eval split and training")
    eval_fraction: float = Field(0.05, ge=0, lt=1, description="held-out pairs for the built-in "
                                 "implicit-reward accuracy (0: none)")
    eval_sample_prompts: int = Field(4, ge=0, description="greedy samples for mean length")
    eval_max_new_tokens: int = Field(64, ge=1, description="tokens per greedy sample")
    save_steps: int = Field(50, ge=1, description="steps between checkpoints (resume after a "
                            "worker failure)")
    trust_remote_code: bool = Field(False, description="run custom model code (off: safe by "
                                    "default)")
    storage_path: str | None = Field(None, description="Ray Train storage (default: the output "
                                     "folder; s3:// or gs:// on a cluster)")
    name: str | None = Field(None, description="run name (default: dpo-<hash of the pairs>)")
    max_failures: int = Field(2, ge=0, description="worker failures Ray Train recovers from")
    fail_once_at_step: int | None = Field(None, description="testing: crash once at this step")

    @model_validator(mode="after")
    def _trainer_pass_through(self, info: ValidationInfo):
        """``trainer`` keys: arguments of ``trl.DPOConfig`` that pdray does not set."""
        if self.trainer and not checked_before(info):
            from trl import DPOConfig as TRLDPOConfig

            own = pdray_trl_args(self, output_dir="pdray-dpo-check", kappa=None)
            check_trainer_args(self.trainer, TRLDPOConfig, own,
                               {k: f"dpo.{f}" for k, f in COPIED.items()})
        return self

    @classmethod
    def paper(cls, **kw) -> DPOConfig:
        """App. B.3: 1 epoch, lr 5e-7, batch 32, warmup 0.1, cosine; β 0.1 is pdray's choice
        (TRL's default: the paper gives no β)."""
        return cls(**{"epochs": 1, "lr": 5e-7, "batch_size": 32, "warmup_ratio": 0.1,
                      "scheduler": "cosine", "beta": 0.1, "max_length": 4096, **kw})

    @classmethod
    def tiny(cls, **kw) -> DPOConfig:
        """Tiny from-config models on CPU: a few fast steps."""
        return cls(**{"model": "tiny", "lr": 5e-4, "batch_size": 4, "max_length": 256,
                      "max_steps": 4, "cpus_per_worker": 0.5,
                      "eval_sample_prompts": 2, "eval_max_new_tokens": 16, **kw})


# trl.DPOConfig arguments copied from a DPOConfig field as they are (warmup_steps takes the
# ratio: transformers reads a value below 1 as a share of the steps, ⌈ratio · steps⌉).
COPIED = {"learning_rate": "lr", "beta": "beta", "num_train_epochs": "epochs",
          "per_device_train_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
          "warmup_steps": "warmup_ratio", "lr_scheduler_type": "scheduler",
          "max_length": "max_length", "save_steps": "save_steps", "seed": "seed",
          "precompute_ref_log_probs": "precompute_ref_log_probs",
          "gradient_checkpointing": "gradient_checkpointing"}


def pdray_trl_args(cfg: DPOConfig, *, output_dir: str, kappa: int | None) -> dict[str, Any]:
    """The ``trl.DPOConfig`` arguments pdray sets (for ``loss: dmpo`` also ``kappa``, the
    argument :class:`pdray.align.dmpo.DMPOConfig` adds), from ``cfg`` and the run's output
    folder and κ (``cfg.kappa``, else the aspects of the data)."""
    return {**{k: getattr(cfg, f) for k, f in COPIED.items()},
            "output_dir": output_dir, "max_steps": cfg.max_steps or -1,  # -1: epochs decide
            "logging_steps": 1, "save_strategy": "steps", "save_total_limit": 1,
            "report_to": "none", "use_cpu": not cfg.use_gpu,
            "bf16": resolve_bf16(cfg.bf16, cfg.use_gpu), "deepspeed": deepspeed_config(cfg.deepspeed),
            "disable_tqdm": True, "dataloader_num_workers": 0,
            "include_num_input_tokens_seen": "non_padding",
            **({"kappa": kappa} if cfg.loss == "dmpo" and kappa is not None else {})}


def trl_args(cfg: DPOConfig, **runtime) -> dict[str, Any]:
    """All arguments of the run's TRL config (``trl.DPOConfig``, or ``DMPOConfig`` for DMPO):
    :func:`pdray_trl_args` plus the ``trainer`` pass-through (validated when the config loads)."""
    return {**pdray_trl_args(cfg, **runtime), **cfg.trainer}

