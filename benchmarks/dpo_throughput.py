"""DPO training throughput: pdray's Ray Train DPO against plain TRL on the same model and data.

Both train ``--steps`` steps of batch ``--batch`` on the same pairs (synthetic by default) with the
same model (``--model tiny`` or ``smollm2`` or a path); tokens/s counts prompt+response tokens of
the pairs seen. Uses CUDA when it is there. Usage:
python benchmarks/dpo_throughput.py [--model tiny] [--steps 20] [--batch 8] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    from pdray.align import DPOConfig, train_dpo
    from pdray.align.data import to_dpo_rows
    from pdray.align.train import resolve_policy
    from pdray.data import synthetic_pairs
    from pdray.raysetup import init_ray

    gpu = torch.cuda.is_available()
    tmp = Path(tempfile.mkdtemp())
    pairs = synthetic_pairs(args.steps * args.batch, seed=0)
    model_path = resolve_policy(args.model, tmp, pairs["prompt"].to_pylist()[:500])
    tok = AutoTokenizer.from_pretrained(model_path)
    n_tok = sum(len(tok(p + c)["input_ids"]) + len(tok(p + r)["input_ids"]) for p, c, r in zip(
        pairs["prompt"].to_pylist(), pairs["chosen"].to_pylist(), pairs["rejected"].to_pylist()))
    # plain TRL, in-process
    ds = datasets.Dataset.from_dict(to_dpo_rows(pairs, tok))
    targs = TRLConfig(output_dir=str(tmp / "trl"), per_device_train_batch_size=args.batch,
                      max_steps=args.steps, learning_rate=5e-4, report_to="none", use_cpu=not gpu,
                      bf16=gpu, max_length=256, save_strategy="no", logging_steps=1000,
                      disable_tqdm=True)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_path), args=targs,
                         train_dataset=ds, processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    t_trl = time.perf_counter() - t0
    # pdray on Ray Train, one worker (train time measured inside the worker, and end to end)
    init_ray()
    t0 = time.perf_counter()
    r = train_dpo(pairs, DPOConfig(model=model_path, max_steps=args.steps, batch_size=args.batch,
                                   lr=5e-4, max_length=256, use_gpu=gpu, cpus_per_worker=1.0,
                                   save_steps=10**6, eval_fraction=0.0),
                  str(tmp / "pdray"), echo=lambda *_: None)
    t_e2e = time.perf_counter() - t0
    t_pd = r.metrics["train_seconds"]
    date = datetime.date.today().isoformat()
    dev = torch.cuda.get_device_name() if gpu else f"CPU, {os.cpu_count()} cores"
    lines = [f"### dpo_throughput — {date} — {platform.machine()}, {dev} — model {args.model}, "
             f"{args.steps} steps × batch {args.batch}", "",
             "| run | seconds | tokens/s | ratio vs plain TRL |", "|---|---|---|---|",
             f"| plain TRL DPOTrainer (baseline) | {t_trl:.2f} | {n_tok / t_trl:.0f} | 1.00 |",
             f"| pdray Ray Train DPO (training loop) | {t_pd:.2f} | {n_tok / t_pd:.0f} | "
             f"{t_trl / t_pd:.2f} |",
             f"| pdray Ray Train DPO (end to end, incl. worker start) | {t_e2e:.2f} | "
             f"{n_tok / t_e2e:.0f} | {t_trl / t_e2e:.2f} |", ""]
    text = "\n".join(lines)
    print(text)
    if args.record:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
