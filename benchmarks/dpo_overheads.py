"""Where the Ray Train DPO loop's time goes beyond plain TRL (issue #13 item 6): the same
trainer.train() span, in-process, with one difference at a time.

Rows (each a fresh ``trl.DPOTrainer`` on the same model and pairs, ``--repeat`` interleaved
rounds, the fastest shown with every run listed):
- baseline: plain TRL with pdray's settings where TRL's defaults differ (no gradient
  checkpointing; bf16 only on GPU), logging every 1000 steps;
- pdray's TRL arguments (:func:`pdray.align.config.trl_args`: logging every step, token
  counting, warm-up and cosine schedule), and that minus token counting / minus per-step logs;
- DistributedDataParallel at world size 1, as HF wraps the model inside a Ray Train worker
  (``LOCAL_RANK`` set): run in a child process of this script, where the env is set first.
Usage: python benchmarks/dpo_overheads.py [--steps 80] [--batch 8] [--repeat 3] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import emit  # benchmarks/_report.py (scripts run from this folder)


def _runs(variants: list[str], steps: int, batch: int, repeat: int) -> dict[str, list[float]]:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    from pdray.align import DPOConfig
    from pdray.align.config import trl_args
    from pdray.align.data import to_dpo_rows
    from pdray.align.train import resolve_policy
    from pdray.data import synthetic_pairs
    from pdray.models.formatting import fix_pad_token

    torch.set_num_threads(os.cpu_count() or 1)
    tmp = Path(tempfile.mkdtemp())
    pairs = synthetic_pairs(steps * batch, seed=0)
    mp = resolve_policy("tiny", tmp, pairs["prompt"].to_pylist()[:500])
    tok = AutoTokenizer.from_pretrained(mp)
    fix_pad_token(tok)
    ds = datasets.Dataset.from_dict(to_dpo_rows(pairs, tok))
    gpu = torch.cuda.is_available()
    base = {"output_dir": str(tmp / "trl"), "per_device_train_batch_size": batch,
                "max_steps": steps, "learning_rate": 5e-4, "report_to": "none", "use_cpu": not gpu,
                "bf16": gpu, "max_length": 256, "save_strategy": "no", "logging_steps": 1000,
                "disable_tqdm": True, "gradient_checkpointing": False}
    pd = trl_args(DPOConfig(model=mp, max_steps=steps, batch_size=batch, lr=5e-4,
                            max_length=256, use_gpu=gpu, save_steps=10**6, eval_fraction=0.0),
                  output_dir=str(tmp / "pd"), kappa=None)
    args = {"baseline": base, "ddp at world size 1": base, "pdray's TRL arguments": pd,
            "… without token counting": {**pd, "include_num_input_tokens_seen": "no"},
            "… logging every 1000 steps": {**pd, "logging_steps": 1000}}
    out: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeat):
        for v in variants:
            tr = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(mp), args=TRLConfig(**args[v]),
                            train_dataset=ds, processing_class=tok)
            t0 = time.perf_counter()
            tr.train()
            out[v].append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:   # the DDP row: HF wraps the model in DDP when LOCAL_RANK is set
        print(json.dumps(_runs(["ddp at world size 1"], a.steps, a.batch, a.repeat)))
        return
    env = dict(os.environ, LOCAL_RANK="0", RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
               MASTER_ADDR="127.0.0.1", MASTER_PORT="29617")
    child = subprocess.run([sys.executable, __file__, "--child", "--steps", str(a.steps),
                            "--batch", str(a.batch), "--repeat", str(a.repeat)],
                           env=env, capture_output=True, text=True, check=True)
    times = json.loads(child.stdout.strip().splitlines()[-1])
    times.update(_runs(["baseline", "pdray's TRL arguments", "… without token counting",
                        "… logging every 1000 steps"], a.steps, a.batch, a.repeat))
    best = min(times["baseline"])
    lines = [(f"### dpo_overheads — {datetime.date.today().isoformat()} — {platform.machine()}, "
             f"{os.cpu_count()} cores — model tiny, {a.steps} steps × batch {a.batch}, best of "
             f"{a.repeat}"), "", ("| trainer.train() of | seconds (best) | ratio vs baseline | "
             "every run (s) |"), "|---|---|---|---|"]
    for name in ["baseline", "pdray's TRL arguments", "… without token counting",
                 "… logging every 1000 steps", "ddp at world size 1"]:
        t = times[name]
        lines.append(f"| {name} | {min(t):.2f} | {best / min(t):.2f} | "
                     f"{', '.join(f'{x:.2f}' for x in t)} |")
    lines += ["", f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", ""]
    emit("\n".join(lines), a.record)


if __name__ == "__main__":
    main()
