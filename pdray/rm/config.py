"""Reward-model training configuration (METHOD.md "Reward models per aspect")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from pdray.length_modes import LengthDebias
from pdray.trainer_args import (
    WithTrainerArgs,
    check_trainer_args,
    checked_before,
    deepspeed_config,
    resolve_bf16,
)

# The paper's four "all-in-one" system prompts (App. B.3).
PAPER_SYSTEM_PROMPTS = {
    "helpfulness": "You are a helpful and proactive AI assistant. Your overriding principle is "
    "ensuring user success. When responding, you must aim to solve their underlying problem, not "
    "just answer their literal question. Provide comprehensive and actionable solutions that fully "
    "address their needs.",
    "honesty": "You are an honest AI assistant. Your overriding principle is transparency. When "
    "responding, you must not invent personal experiences or emotions. If you don't know an answer "
    "or cannot fulfill a request, state it clearly.",
    "instruction_following": "You are a meticulous and precise AI assistant. Your overriding "
    "principle is strict adherence to instructions. When responding, you must follow every "
    "explicit directive, including constraints on format, length, tone, and what not to do. Pay "
    "close attention to every detail of the request.",
    "truthfulness": "You are a fact-focused and rigorous AI assistant. Your overriding principle "
    "is factual accuracy. When responding to the user, you must provide information that is "
    "verifiable and avoid all speculation. If you are not certain about a fact, state that "
    "clearly. Never fabricate information.",
}
GENERIC_SYSTEM_PROMPT = "You judge responses for {aspect}."


class RMConfig(WithTrainerArgs):
    backbone: str = Field("tiny", description="HF folder or hub id, 'tiny', 'minilm' or 'smollm2'")
    mode: Literal["separate", "all_in_one", "multi_head"] = Field(
        "separate", description="separate: one model per aspect; all_in_one: one model, a system "
        "prompt per aspect (the paper); multi_head: one backbone, a head per aspect")
    length_debias: LengthDebias = Field(
        "learned", description="learned: −log σ(Δr + ρ̂_k·Δlen) with ρ̂_k trained per aspect, "
        "scored as Δr alone; penalty: Eq. 17/18 with the fixed ρ; poe: −log σ(Δr + ρ·Δlen) "
        "with the fixed ρ, scored as Δr; none: plain Bradley–Terry (Eq. 11)")
    rho: float = Field(0.001, ge=0, description="ρ per token of Δlen (Eq. 17; penalty and poe); the "
                     "paper gives no value: 0.001 is pdray's starting point, tune it")
    tau: float = Field(1.0, gt=0, description="balance temperature τ (Eq. 16)")
    sample_ratio: float = Field(0.3, gt=0, le=1, description="p_r (Eq. 16)")
    min_sample_pairs: int = Field(1000, ge=0, description="p_r never leaves an aspect fewer "
                                  "training pairs than this (or all of D_k, if smaller)")
    balanced: bool = Field(True, description="length-balanced sampling (Eq. 16) or uniform")
    pooling: Literal["auto", "mean", "native"] = Field(
        "auto", description="mean: masked mean of the last hidden states (sentence encoders); "
        "native: the classifier's own (last token for decoders); auto picks by architecture")
    epochs: float = Field(1.0, gt=0, description="passes over each aspect's sampled pairs "
                          "(the paper: 1), at least min_steps steps")
    min_steps: int = Field(60, ge=0, description="floor on optimizer steps: small D_k get "
                           "more passes than `epochs`")
    max_steps: int | None = Field(None, gt=0, description="exact number of steps (overrides "
                                  "epochs and min_steps)")
    train_backbone: bool = Field(True, description="false: freeze the backbone and fit only "
                                 "the scalar head (and the learned ρ̂_k) on pooled features "
                                 "computed once, with L2 chosen on the dev split — a linear "
                                 "probe (pdray/rm/probe.py); cheap on CPU for 100M+ backbones")
    backbone_layers: int | None = Field(
        None, ge=1, description="keep only the backbone's first N transformer layers (its "
        "final norm then reads layer N): a frozen backbone's middle-to-late layer can carry "
        "more than its last (SmolLM2-135M on PKU: layer 21 of 30, benchmarks/probe_layers.py), "
        "and N/L of the compute; the saved reward model has N layers; default: all")
    head_l2: list[float] = Field(default_factory=lambda: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2,
                                                          0.1, 0.3, 1.0],
                                 min_length=1, description="L2 strengths α the head-only fit "
                                 "chooses from by held-out BT loss (train_backbone=false)")
    lr: float = Field(2e-5, gt=0, description="learning rate of the backbone")
    head_lr: float = Field(2e-3, gt=0, description="learning rate of the fresh scalar head "
                           "(and of the learned length coefficient)")
    batch_size: int = Field(32, ge=1, description="per device")
    grad_accum: int = Field(1, ge=1, description="gradient accumulation steps")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="share of steps warming the "
                                "learning rate up (the paper: 0.05)")
    scheduler: str = Field("cosine", description="transformers learning-rate scheduler name")
    weight_decay: float = Field(0.0, description="AdamW weight decay")
    max_length: int = Field(4096, ge=8, description="tokens of prompt + response per input "
                            "(the prompt is cut from the left; see response_share)")
    response_share: float = Field(0.75, gt=0, le=1, description="share of max_length the "
                                  "response keeps when the input is too long; the prompt is cut "
                                  "from its left first")
    seed: int = Field(0, description="seed of sampling, the dev split and training")
    holdout_fraction: float = Field(0.1, ge=0, lt=1, description="held out for accuracy metrics")
    dev_fraction: float = Field(0.1, ge=0, lt=1, description="share of each unit's training "
                                "sample kept aside for early stopping (0: off)")
    eval_steps: int | None = Field(None, ge=1, description="steps between early-stopping "
                                   "evaluations (default: a tenth of the run, at least 5)")
    early_stopping_patience: int = Field(3, ge=1, description="evaluations without a better "
                                         "held-out Bradley–Terry loss before stopping")
    min_pairs: int = Field(8, ge=2, description="fewest pairs an aspect may train on")
    num_workers_per_aspect: int = Field(1, ge=1, description="Ray Train workers (data "
                                        "parallel) per training unit")
    cpus_per_worker: float = Field(0.5, gt=0, description="Ray CPUs each worker holds (a CPU "
                                   "worker runs torch on as many threads)")
    use_gpu: bool = Field(False, description="one GPU per worker")
    bf16: bool | None = Field(None, description="default: on with GPUs")
    deepspeed: Literal["zero2", "zero3"] | dict[str, Any] | str | None = Field(
        None, description="DeepSpeed ZeRO stage (zero2, zero3, as dpo.deepspeed), a full "
        "DeepSpeed config, or the path of one")
    lora: dict[str, Any] | None = Field(None, description="peft LoraConfig kwargs")
    system_prompts: dict[str, str] = Field(default_factory=lambda: dict(PAPER_SYSTEM_PROMPTS),
                                           description="all_in_one: the system prompt of each "
                                           "aspect (default: the paper's)")
    trust_remote_code: bool = Field(False, description="run custom model code (off: safe by "
                                    "default)")
    train_holistic: bool = Field(False, description="also train the A1 holistic RM")
    train_no_debias: bool = Field(False, description="also train the A2 no-mitigation RMs")
    save_steps: int = Field(50, ge=1, description="steps between checkpoints (resume after a "
                            "worker failure)")
    storage_path: str | None = Field(None, description="Ray Train storage (default: output dir)")
    max_failures: int = Field(2, ge=0, description="worker failures Ray Train recovers from")
    fail_once_at_step: int | None = Field(None, description="testing: crash once at this step")

    @classmethod
    def paper(cls, **kw) -> RMConfig:
        """App. B.3: 1 epoch, lr 2e-5, batch 32, warmup 0.05, cosine, AdamW, max length 4096."""
        return cls(**{"epochs": 1, "lr": 2e-5, "batch_size": 32, "warmup_ratio": 0.05,
                      "scheduler": "cosine", "max_length": 4096, "sample_ratio": 0.3, **kw})

    @model_validator(mode="after")
    def _head_only_settings(self):
        if any(a < 0 for a in self.head_l2):
            raise ValueError(f"rm.head_l2 values must be ≥ 0, got {self.head_l2}")
        if not self.train_backbone and (self.lora or self.deepspeed):
            raise ValueError("rm.train_backbone=false fits only the head on frozen features; "
                             "rm.lora and rm.deepspeed train the backbone — drop them or set "
                             "rm.train_backbone=true")
        if not self.train_backbone and self.num_workers_per_aspect > 1:
            raise ValueError("rm.train_backbone=false fits each head in one worker (a second "
                             "would repeat the same forward passes): set "
                             "rm.num_workers_per_aspect=1")
        return self

    @model_validator(mode="after")
    def _trainer_pass_through(self, info: ValidationInfo):
        """``trainer`` keys: arguments of ``trl.RewardConfig`` that pdray does not set."""
        if self.trainer and not checked_before(info):
            from trl import RewardConfig

            planned = self.max_steps or max(1, self.min_steps)
            check_trainer_args(self.trainer, RewardConfig,
                               pdray_trl_args(self, output_dir="pdray-rm-check",
                                              max_steps=planned, pooling="native",
                                              early_stopping=self.dev_fraction > 0),
                               {**{k: f"rm.{f}" for k, f in COPIED.items()},
                                "deepspeed": "rm.deepspeed",
                                # max_steps, planned from epochs, would override it
                                "num_train_epochs": "rm.epochs"})
        return self

    def system_prompt(self, aspect: str) -> str:
        return self.system_prompts.get(aspect, GENERIC_SYSTEM_PROMPT.format(aspect=aspect))


# trl.RewardConfig arguments copied from an RMConfig field as they are (warmup_steps takes the
# ratio: transformers reads a value below 1 as a share of the steps, ⌈ratio · steps⌉).
COPIED = {"learning_rate": "lr", "per_device_train_batch_size": "batch_size",
          "per_device_eval_batch_size": "batch_size", "gradient_accumulation_steps": "grad_accum",
          "warmup_steps": "warmup_ratio", "lr_scheduler_type": "scheduler",
          "weight_decay": "weight_decay", "seed": "seed"}


def eval_every(cfg: RMConfig, steps: int) -> int:
    """Steps between early-stopping evaluations: ``eval_steps``, else a tenth of the run (at
    least 5), never more than ``save_steps`` — evaluations coincide with checkpoints, so
    transformers can keep the best one."""
    return min(cfg.eval_steps or max(5, steps // 10), cfg.save_steps)


def pdray_trl_args(cfg: RMConfig, *, output_dir: str, max_steps: int, pooling: str,
                   early_stopping: bool) -> dict[str, Any]:
    """The ``trl.RewardConfig`` arguments pdray sets, from ``cfg`` and the unit's runtime values:
    the planned optimizer steps (:func:`pdray.rm.train.plan_steps`), the resolved pooling, and
    whether a dev split exists (early stopping on its Bradley–Terry loss, checkpoints at every
    evaluation, the best model kept)."""
    every = eval_every(cfg, max_steps)
    learned = cfg.length_debias == "learned"
    return {**{k: getattr(cfg, f) for k, f in COPIED.items()},
            "output_dir": output_dir, "max_steps": max_steps,
            "logging_steps": max(1, min(every, 10)), "save_strategy": "steps",
            "save_steps": every if early_stopping else cfg.save_steps, "save_total_limit": 1,
            "eval_strategy": "steps" if early_stopping else "no",
            "eval_steps": every if early_stopping else None,
            "load_best_model_at_end": early_stopping, "metric_for_best_model": "eval_loss",
            "greater_is_better": False, "report_to": "none", "use_cpu": not cfg.use_gpu,
            "bf16": resolve_bf16(cfg.bf16, cfg.use_gpu),
            "deepspeed": deepspeed_config(cfg.deepspeed),  # zero2/zero3: as dpo.deepspeed
            "max_length": None,               # pdray truncates (response_share) before TRL
            "remove_unused_columns": False, "dataloader_num_workers": 0, "disable_tqdm": True,
            # mean pooling leaves the [CLS] pooler of BERT-style models out of the loss
            "ddp_find_unused_parameters": pooling == "mean" or learned}


def trl_args(cfg: RMConfig, **runtime) -> dict[str, Any]:
    """All ``trl.RewardConfig`` arguments of a unit: :func:`pdray_trl_args` plus the ``trainer``
    pass-through (validated when the config loads)."""
    return {**pdray_trl_args(cfg, **runtime), **cfg.trainer}
