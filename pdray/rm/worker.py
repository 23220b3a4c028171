"""The Ray Train worker: TRL's RewardTrainer (pdray's subclass, :mod:`pdray.rm.losses`) on one
training unit (an aspect, or a shared model), with the step floor, early stopping on the held-out
Bradley–Terry loss and the length modes of :func:`pdray.rm.losses.bt_loss`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pdray.models.backbones import load_reward_backbone
from pdray.models.callbacks import fail_once_callback
from pdray.models.reward import POOLING_KEY, install_forward, resolve_pooling
from pdray.rm.losses import (
    LENGTH_COEF,
    HeadCollator,
    PdrayRewardTrainer,
    add_length_coef,
    pop_length_coef,
)
from pdray.rm.probe import train_probe


def _progress_callback(name: str):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if not (state.is_world_process_zero and logs):
                return
            if "loss" in logs:
                print(f"[rm:{name}] step {state.global_step}/{state.max_steps} "
                      f"loss {logs['loss']:.4f} acc {logs.get('accuracy', float('nan')):.3f}",
                      flush=True)
            if "eval_loss" in logs:
                print(f"[rm:{name}] step {state.global_step}/{state.max_steps} held-out BT loss "
                      f"{logs['eval_loss']:.4f} acc {logs.get('eval_accuracy', float('nan')):.3f}",
                      flush=True)

    return Progress()


def train_unit(spec: dict) -> None:
    """Ray Train ``train_loop_per_worker``: train, checkpoint through Ray, report the final model.

    ``spec["max_steps"]`` is the planned number of optimizer steps (the step floor applied by
    the driver); with ``eval_rows``, the held-out Bradley–Terry loss is evaluated every
    ``eval_steps`` and training stops after ``patience`` evaluations without improvement, keeping
    the best model (transformers' ``EarlyStoppingCallback`` and ``load_best_model_at_end``).
    """
    import datasets
    import ray.train
    import torch
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from transformers import EarlyStoppingCallback
    from trl import RewardConfig

    ctx = ray.train.get_context()
    cpus = spec.get("cpus_per_worker") or 1
    if not spec["use_gpu"]:
        torch.set_num_threads(max(1, int(round(cpus))))
    start = time.time()
    model, tok = load_reward_backbone(spec["backbone"], spec["num_labels"],
                                      trust_remote_code=spec["trust_remote_code"],
                                      id2label=spec.get("id2label"), fresh_head="zeros")
    pooling = resolve_pooling(model, spec.get("pooling", "auto"))
    if not spec.get("train_backbone", True):
        metrics = train_probe(model, tok, pooling, spec["rows"], spec.get("eval_rows"),
                              num_labels=spec["num_labels"], length_debias=spec["length_debias"],
                              l2_grid=spec["head_l2"], coef0=spec.get("length_coef_init"),
                              echo=lambda m: print(m, flush=True), name=spec["name"])
        metrics.update({"planned_steps": spec["max_steps"], "pooling": pooling,
                        "resumed": False, "start": start, "end": time.time()})
        return _report_final(ctx, model, tok, pooling, metrics, spec)
    learned = spec["length_debias"] == "learned"
    if learned:
        add_length_coef(model, spec["length_coef_init"])
    install_forward(model, pooling, LENGTH_COEF if learned else None)
    if spec.get("lora"):
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **spec["lora"]))
    ds = datasets.Dataset.from_dict(spec["rows"])
    eval_ds = datasets.Dataset.from_dict(spec["eval_rows"]) if spec.get("eval_rows") else None
    use_gpu = spec["use_gpu"]
    bf16 = spec["bf16"] if spec["bf16"] is not None else use_gpu
    out_tmp = tempfile.mkdtemp(prefix=f"pdray-rm-{spec['name']}-")
    every = spec["eval_steps"]
    stopping = eval_ds is not None and eval_ds.num_rows > 0
    args = RewardConfig(
        output_dir=out_tmp, per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=spec["batch_size"],
        gradient_accumulation_steps=spec["grad_accum"], max_steps=spec["max_steps"],
        learning_rate=spec["lr"], warmup_steps=spec["warmup_steps"],
        lr_scheduler_type=spec["scheduler"], weight_decay=spec["weight_decay"],
        logging_steps=max(1, min(every, 10)), save_strategy="steps",
        save_steps=every if stopping else spec["save_steps"], save_total_limit=1,
        eval_strategy="steps" if stopping else "no", eval_steps=every if stopping else None,
        load_best_model_at_end=stopping, metric_for_best_model="eval_loss",
        greater_is_better=False, report_to="none", seed=spec["seed"], use_cpu=not use_gpu,
        bf16=bf16, max_length=None, remove_unused_columns=False, dataloader_num_workers=0,
        deepspeed=spec.get("deepspeed"), disable_tqdm=True,
        # mean pooling leaves the [CLS] pooler of BERT-style models out of the loss
        ddp_find_unused_parameters=pooling == "mean" or learned)
    collator = HeadCollator(pad_token_id=tok.pad_token_id) if spec["num_labels"] > 1 else None
    trainer = PdrayRewardTrainer(model=model, args=args, train_dataset=ds, eval_dataset=eval_ds,
                                 processing_class=tok, data_collator=collator,
                                 length_debias=spec["length_debias"], head_lr=spec["head_lr"])
    trainer.add_callback(_progress_callback(spec["name"]))
    fail = fail_once_callback(f"rm:{spec['name']}", spec.get("fail_once_at_step"),
                              spec.get("fail_marker"))
    if fail is not None:
        trainer.add_callback(fail)
    if stopping:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=spec["patience"]))
    trainer.add_callback(RayTrainReportCallback())
    trainer = prepare_trainer(trainer)
    ckpt = ray.train.get_checkpoint()
    resumed_from = None
    if ckpt:
        with ckpt.as_directory() as d:
            path = os.path.join(d, RayTrainReportCallback.CHECKPOINT_NAME)
            if os.path.isfile(os.path.join(path, "trainer_state.json")):
                resumed_from = path
                print(f"[rm:{spec['name']}] resuming from checkpoint {path}", flush=True)
                trainer.train(resume_from_checkpoint=path)
            else:  # a finished run's final model, or a half-written checkpoint: start over
                print(f"[rm:{spec['name']}] the last checkpoint ({d}) is not a training "
                      f"checkpoint: training from scratch", flush=True)
                trainer.train()
    else:
        trainer.train()
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    metrics = {"train_loss": float(losses[-1]) if losses else float("nan"),
               "first_loss": float(losses[0]) if losses else float("nan"),
               "steps": int(trainer.state.global_step), "planned_steps": spec["max_steps"],
               "best_eval_loss": (float(trainer.state.best_metric)
                                  if trainer.state.best_metric is not None else None),
               "best_step": _best_step(trainer.state.best_model_checkpoint),
               "eval_losses": evals, "stopped_early": trainer.state.global_step < spec["max_steps"],
               "pooling": pooling, "resumed": resumed_from is not None, "start": start,
               "end": time.time()}
    m = trainer.model
    if spec.get("lora"):
        m = m.merge_and_unload()
    coef = pop_length_coef(m)
    if coef is not None:
        metrics["length_coef"] = coef
    _report_final(ctx, m, tok, pooling, metrics, spec)


def _report_final(ctx, m, tok, pooling: str, metrics: dict, spec: dict) -> None:
    """Save the final model (rank 0) as a plain HF folder and report it to Ray Train."""
    import ray.train

    final = tempfile.mkdtemp(prefix=f"pdray-rm-final-{spec['name']}-")
    if metrics.get("length_coef") is not None:
        metrics["learned_rho_per_token"] = [c / spec["length_scale"]
                                            for c in metrics["length_coef"]]
    if ctx.get_world_rank() == 0:
        setattr(m.config, POOLING_KEY, pooling)
        m.save_pretrained(final, safe_serialization=True)
        tok.save_pretrained(final)
    ray.train.report({"final": 1, **metrics},
                     checkpoint=ray.train.Checkpoint.from_directory(final)
                     if ctx.get_world_rank() == 0 else None)


def _best_step(path: str | None) -> int | None:
    """The step of ``…/checkpoint-<step>`` (transformers' best-model checkpoint)."""
    if not path:
        return None
    tail = Path(path).name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
