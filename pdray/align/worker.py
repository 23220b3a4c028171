"""The Ray Train worker: TRL's DPOTrainer (or DMPOTrainer) on the selected pairs."""

from __future__ import annotations

import os
import tempfile
import time

from pdray.align.config import DPOConfig, trl_args
from pdray.models.callbacks import fail_once_callback, ray_report_callback
from pdray.models.formatting import fix_pad_token
from pdray.ray_train import shared_output_dir
from pdray.trainer_args import CHECKED, init_deepspeed_on_cpu, resolve_bf16


def _progress_callback(name: str):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if state.is_world_process_zero and logs and "loss" in logs:
                acc = logs.get("rewards/accuracies", float("nan"))
                print(f"[dpo:{name}] step {state.global_step}/{state.max_steps} "
                      f"loss {logs['loss']:.4f} reward acc {acc:.3f}", flush=True)

    return Progress()


def train_dpo_worker(spec: dict) -> None:
    """Ray Train ``train_loop_per_worker``: DPO (or DMPO) with TRL, checkpoints through Ray, the
    final model reported as a plain HF folder.

    ``spec`` holds the run's :class:`DPOConfig` (``cfg``, a ``model_dump``) and its runtime
    values: ``name``, ``model`` / ``ref_model`` (resolved folders), ``rows``
    (:func:`pdray.align.data.to_dpo_rows`), ``kappa`` and ``fail_marker``. TRL's arguments are
    :func:`pdray.align.config.trl_args`.
    """
    import datasets
    import ray.train
    import torch
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    from pdray.align.dmpo import DMPOConfig, DMPOTrainer  # trl, inside the worker only

    cfg = DPOConfig.model_validate(spec["cfg"], context=CHECKED)  # checked by the driver
    name = spec["name"]
    if not cfg.use_gpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        # the worker's CPUs, not Ray's OMP default
        torch.set_num_threads(max(1, round(cfg.cpus_per_worker)))
    ctx = ray.train.get_context()
    start = time.time()
    trc = cfg.trust_remote_code
    tok = AutoTokenizer.from_pretrained(spec["model"], trust_remote_code=trc)
    fix_pad_token(tok)
    dtype = torch.bfloat16 if resolve_bf16(cfg.bf16, cfg.use_gpu) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(spec["model"], trust_remote_code=trc, dtype=dtype)
    ref = None
    if spec["ref_model"] and spec["ref_model"] != spec["model"]:
        ref = AutoModelForCausalLM.from_pretrained(spec["ref_model"], trust_remote_code=trc,
                                                   dtype=dtype)
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig, TaskType

        peft_config = LoraConfig(task_type=TaskType.CAUSAL_LM, **cfg.lora)
    ds = datasets.Dataset.from_dict(spec["rows"])
    init_deepspeed_on_cpu(cfg.deepspeed, cfg.use_gpu)  # before TRL loads the reference model
    # built after the models are loaded: DeepSpeed args made earlier would make from_pretrained
    # load ZeRO-3 partitions
    dmpo = cfg.loss == "dmpo"
    args = (DMPOConfig if dmpo else TRLDPOConfig)(**trl_args(
        cfg, output_dir=shared_output_dir(f"pdray-dpo-{name}-"), kappa=spec["kappa"]))
    kwargs = {"model": model, "ref_model": ref, "args": args, "train_dataset": ds,
              "processing_class": tok, "peft_config": peft_config}
    trainer = DMPOTrainer(**kwargs) if dmpo else DPOTrainer(**kwargs)
    trainer.remove_callback(PrinterCallback)  # disable_tqdm's dict per step: Progress says it
    trainer.add_callback(_progress_callback(name))
    fail = fail_once_callback(f"dpo:{name}", cfg.fail_once_at_step, spec.get("fail_marker"))
    if fail is not None:
        trainer.add_callback(fail)
    trainer.add_callback(ray_report_callback())
    trainer = prepare_trainer(trainer)
    ckpt = ray.train.get_checkpoint()
    resumed = False
    t0, c0 = time.time(), time.process_time()
    if ckpt:
        with ckpt.as_directory() as d:
            resumed = True
            print(f"[dpo:{name}] resuming from checkpoint", flush=True)
            result = trainer.train(resume_from_checkpoint=os.path.join(
                d, RayTrainReportCallback.CHECKPOINT_NAME))
    else:
        result = trainer.train()
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0
    final = tempfile.mkdtemp(prefix=f"pdray-dpo-final-{name}-")
    m = trainer.model
    if peft_config is not None and ctx.get_world_rank() == 0:
        m = trainer.accelerator.unwrap_model(m).merge_and_unload()
        m.save_pretrained(final, safe_serialization=True)
    elif peft_config is None:
        trainer.save_model(final)  # every rank: ZeRO-3 gathers the weights
    if ctx.get_world_rank() == 0:
        tok.save_pretrained(final)
    n_tok = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)  # all workers
    ray.train.report({"final": 1, "train_loss": float(result.training_loss),
                      "steps": int(trainer.state.global_step), "resumed": resumed,
                      "train_seconds": seconds, "train_cpu_seconds": cpu_seconds,
                      "start": start, "end": time.time(),
                      "world_size": ctx.get_world_size(), "tokens_seen": n_tok,
                      "torch_threads": torch.get_num_threads(),
                      "tokens_per_second": (n_tok - getattr(trainer, "_initial_num_input_tokens_seen",
                                                            0)) / seconds if seconds > 0 else 0.0},
                     checkpoint=ray.train.Checkpoint.from_directory(final)
                     if ctx.get_world_rank() == 0 else None)
