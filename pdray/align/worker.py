"""The Ray Train worker: TRL's DPOTrainer (or DMPOTrainer) on the selected pairs."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def _callbacks(name: str, fail_step: int | None, marker: str | None):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if state.is_world_process_zero and logs and "loss" in logs:
                acc = logs.get("rewards/accuracies", float("nan"))
                print(f"[dpo:{name}] step {state.global_step}/{state.max_steps} "
                      f"loss {logs['loss']:.4f} reward acc {acc:.3f}", flush=True)

        def on_step_end(self, args, state, control, **kw):
            if fail_step and state.global_step == fail_step and marker and not os.path.exists(marker):
                Path(marker).write_text("failed once")
                raise RuntimeError(f"[dpo:{name}] injected failure at step {fail_step}")

    return Progress()


def train_dpo_worker(spec: dict) -> None:
    import datasets
    import ray.train
    import torch
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    from pdray.align.dmpo import DMPOTrainer
    from pdray.models.backbones import fix_pad_token

    if not spec["use_gpu"]:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        torch.set_num_threads(spec["torch_threads"])  # the worker's CPUs, not Ray's OMP default
    ctx = ray.train.get_context()
    start = time.time()
    trc = spec["trust_remote_code"]
    tok = AutoTokenizer.from_pretrained(spec["model"], trust_remote_code=trc)
    fix_pad_token(tok)
    dtype = torch.bfloat16 if spec["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(spec["model"], trust_remote_code=trc, dtype=dtype)
    ref = None
    if spec["ref_model"] and spec["ref_model"] != spec["model"]:
        ref = AutoModelForCausalLM.from_pretrained(spec["ref_model"], trust_remote_code=trc, dtype=dtype)
    peft_config = None
    if spec.get("lora"):
        from peft import LoraConfig, TaskType

        peft_config = LoraConfig(task_type=TaskType.CAUSAL_LM, **spec["lora"])
    ds = datasets.Dataset.from_dict(spec["rows"])
    out_tmp = tempfile.mkdtemp(prefix=f"pdray-dpo-{spec['name']}-")
    args = TRLDPOConfig(
        output_dir=out_tmp, per_device_train_batch_size=spec["batch_size"],
        gradient_accumulation_steps=spec["grad_accum"], num_train_epochs=spec["epochs"],
        max_steps=spec["max_steps"] or -1, learning_rate=spec["lr"], beta=spec["beta"],
        warmup_steps=spec["warmup_ratio"], lr_scheduler_type=spec["scheduler"],
        logging_steps=1, save_strategy="steps", save_steps=spec["save_steps"],
        save_total_limit=1, report_to="none", seed=spec["seed"], use_cpu=not spec["use_gpu"],
        bf16=spec["bf16"], max_length=spec["max_length"],
        precompute_ref_log_probs=spec["precompute_ref_log_probs"],
        gradient_checkpointing=spec["gradient_checkpointing"], deepspeed=spec["deepspeed"],
        disable_tqdm=True, dataloader_num_workers=0, include_num_input_tokens_seen="non_padding")
    kwargs = dict(model=model, ref_model=ref, args=args, train_dataset=ds, processing_class=tok,
                  peft_config=peft_config)
    trainer = (DMPOTrainer(**kwargs, kappa=spec["kappa"]) if spec["loss"] == "dmpo"
               else DPOTrainer(**kwargs))
    trainer.remove_callback(PrinterCallback)  # disable_tqdm's dict per step: Progress says it
    trainer.add_callback(_callbacks(spec["name"], spec.get("fail_once_at_step"),
                                    spec.get("fail_marker")))
    trainer.add_callback(RayTrainReportCallback())
    trainer = prepare_trainer(trainer)
    ckpt = ray.train.get_checkpoint()
    resumed = False
    t0, c0 = time.time(), time.process_time()
    if ckpt:
        with ckpt.as_directory() as d:
            resumed = True
            print(f"[dpo:{spec['name']}] resuming from checkpoint", flush=True)
            result = trainer.train(resume_from_checkpoint=os.path.join(
                d, RayTrainReportCallback.CHECKPOINT_NAME))
    else:
        result = trainer.train()
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0
    final = tempfile.mkdtemp(prefix=f"pdray-dpo-final-{spec['name']}-")
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
