"""The Ray Train worker: TRL's RewardTrainer (pdray's subclass, :mod:`pdray.rm.losses`) on one
training unit (an aspect, or a shared model), with the step floor, early stopping on the held-out
Bradley–Terry loss and the length modes of :func:`pdray.rm.losses.bt_loss`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from pdray.models.backbones import load_reward_backbone
from pdray.models.callbacks import fail_once_callback, ray_report_callback
from pdray.models.reward import POOLING_KEY, install_forward, resolve_pooling
from pdray.ray_train import shared_output_dir
from pdray.rm.config import RMConfig, trl_args
from pdray.rm.losses import (
    LENGTH_COEF,
    HeadCollator,
    PdrayRewardTrainer,
    add_length_coef,
    pop_length_coef,
)
from pdray.rm.probe import train_probe
from pdray.trainer_args import CHECKED, init_deepspeed_on_cpu


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

    ``spec`` holds the unit's :class:`RMConfig` (``cfg``, a ``model_dump``) and its runtime
    values: ``name``, ``backbone`` (a resolved folder), ``num_labels``, ``id2label``, ``rows`` /
    ``eval_rows`` (:func:`pdray.rm.dataset.training_rows`), ``planned_steps`` (the step floor
    applied by the driver), ``length_scale``, ``length_coef_init`` and ``fail_marker``. TRL's
    arguments are :func:`pdray.rm.config.trl_args`. With ``eval_rows``, the held-out
    Bradley–Terry loss is evaluated every :func:`~pdray.rm.config.eval_every` steps and training
    stops after ``early_stopping_patience`` evaluations without improvement, keeping the best
    model (transformers' ``EarlyStoppingCallback`` and ``load_best_model_at_end``).
    """
    import datasets
    import ray.train
    import torch
    from ray.train.huggingface.transformers import prepare_trainer
    from transformers import EarlyStoppingCallback
    from trl import RewardConfig

    cfg = RMConfig.model_validate(spec["cfg"], context=CHECKED)  # checked by the driver
    name, steps = spec["name"], spec["planned_steps"]
    ctx = ray.train.get_context()
    if not cfg.use_gpu:
        torch.set_num_threads(max(1, round(cfg.cpus_per_worker)))
    start = time.time()
    model, tok = load_reward_backbone(spec["backbone"], spec["num_labels"],
                                      trust_remote_code=cfg.trust_remote_code,
                                      id2label=spec.get("id2label"), fresh_head="zeros",
                                      num_layers=cfg.backbone_layers)
    pooling = resolve_pooling(model, cfg.pooling)
    if not cfg.train_backbone:
        metrics = train_probe(model, tok, pooling, spec["rows"], spec.get("eval_rows"),
                              num_labels=spec["num_labels"], length_debias=cfg.length_debias,
                              l2_grid=list(cfg.head_l2), coef0=spec.get("length_coef_init"),
                              echo=lambda m: print(m, flush=True), name=name)
        metrics.update({"planned_steps": steps, "pooling": pooling,
                        "resumed": False, "start": start, "end": time.time()})
        return _report_final(ctx, model, tok, pooling, metrics, spec)
    learned = cfg.length_debias == "learned"
    if learned:
        add_length_coef(model, spec["length_coef_init"])
    install_forward(model, pooling, LENGTH_COEF if learned else None)
    if cfg.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **cfg.lora))
    ds = datasets.Dataset.from_dict(spec["rows"])
    eval_ds = datasets.Dataset.from_dict(spec["eval_rows"]) if spec.get("eval_rows") else None
    stopping = eval_ds is not None and eval_ds.num_rows > 0
    init_deepspeed_on_cpu(cfg.deepspeed, cfg.use_gpu)
    args = RewardConfig(**trl_args(cfg, output_dir=shared_output_dir(f"pdray-rm-{name}-"),
                                   max_steps=steps, pooling=pooling, early_stopping=stopping))
    collator = HeadCollator(pad_token_id=tok.pad_token_id) if spec["num_labels"] > 1 else None
    trainer = PdrayRewardTrainer(model=model, args=args, train_dataset=ds, eval_dataset=eval_ds,
                                 processing_class=tok, data_collator=collator,
                                 length_debias=cfg.length_debias, head_lr=cfg.head_lr)
    trainer.add_callback(_progress_callback(name))
    fail = fail_once_callback(f"rm:{name}", cfg.fail_once_at_step, spec.get("fail_marker"))
    if fail is not None:
        trainer.add_callback(fail)
    if stopping:
        trainer.add_callback(EarlyStoppingCallback(
            early_stopping_patience=cfg.early_stopping_patience))
    trainer.add_callback(ray_report_callback())
    trainer = prepare_trainer(trainer)
    resumed_from = _train(trainer, name)
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    metrics = {"train_loss": float(losses[-1]) if losses else float("nan"),
               "first_loss": float(losses[0]) if losses else float("nan"),
               "steps": int(trainer.state.global_step), "planned_steps": steps,
               "best_eval_loss": (float(trainer.state.best_metric)
                                  if trainer.state.best_metric is not None else None),
               "best_step": _best_step(trainer.state.best_model_checkpoint),
               "eval_losses": evals, "stopped_early": trainer.state.global_step < steps,
               "pooling": pooling, "resumed": resumed_from is not None, "start": start,
               "end": time.time()}
    m = trainer.model
    if cfg.lora:
        m = m.merge_and_unload()
    state = _gathered_state_dict(trainer)
    coef = pop_length_coef(m)
    if state is not None:  # ZeRO-3: the values gathered on rank 0, not the local partition
        full = state.pop(LENGTH_COEF, None)
        coef = [float(x) for x in full] if full is not None else None
    if coef is not None:
        metrics["length_coef"] = coef
    _report_final(ctx, m, tok, pooling, metrics, spec, state)


def _gathered_state_dict(trainer) -> dict | None:
    """Under DeepSpeed ZeRO-3, the model's full weights gathered from every worker (a
    collective: all ranks call it; rank 0 gets them, the others an empty dict); ``None`` when
    each worker holds whole weights."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not (trainer.is_deepspeed_enabled and is_deepspeed_zero3_enabled()):
        return None
    return trainer.accelerator.get_state_dict(trainer.model_wrapped)


def _train(trainer, name: str) -> str | None:
    """``trainer.train()``, resumed from Ray Train's last checkpoint when it is a training
    checkpoint; the checkpoint path it resumed from (``None``: from scratch)."""
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback

    ckpt = ray.train.get_checkpoint()
    if not ckpt:
        trainer.train()
        return None
    with ckpt.as_directory() as d:
        path = os.path.join(d, RayTrainReportCallback.CHECKPOINT_NAME)
        if os.path.isfile(os.path.join(path, "trainer_state.json")):
            print(f"[rm:{name}] resuming from checkpoint {path}", flush=True)
            trainer.train(resume_from_checkpoint=path)
            return path
        # a finished run's final model, or a half-written checkpoint: start over
        print(f"[rm:{name}] the last checkpoint ({d}) is not a training checkpoint: training "
              f"from scratch", flush=True)
        trainer.train()
        return None


def _report_final(ctx, m, tok, pooling: str, metrics: dict, spec: dict,
                  state: dict | None = None) -> None:
    """Save the final model (rank 0; its weights ``state`` when given, else its own) as a
    plain HF folder and report it to Ray Train."""
    import ray.train

    final = tempfile.mkdtemp(prefix=f"pdray-rm-final-{spec['name']}-")
    if metrics.get("length_coef") is not None:
        metrics["learned_rho_per_token"] = [c / spec["length_scale"]
                                            for c in metrics["length_coef"]]
    if ctx.get_world_rank() == 0:
        setattr(m.config, POOLING_KEY, pooling)
        m.save_pretrained(final, state_dict=state, safe_serialization=True)
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
