"""DPO training throughput: pdray's Ray Train DPO against plain TRL on the same model and data.

Both train ``--steps`` steps of batch ``--batch`` on the same pairs (synthetic by default) with the
same model (``--model tiny`` or ``smollm2`` or a path); tokens/s counts prompt+response tokens of
the pairs seen. Plain TRL runs torch on ``--threads`` threads (default: every core) and the Ray
worker holds as many CPUs (``cpus_per_worker``; a CPU worker runs torch on that many threads).
Plain TRL gets pdray's settings where ``trl.DPOConfig``'s defaults differ (gradient
checkpointing off, bf16 only on GPU). Both run ``--repeat`` times, interleaved; the table
compares the fastest of each. Uses CUDA when it is there. Usage:
python benchmarks/dpo_throughput.py [--model tiny] [--steps 20] [--batch 8] [--threads N]
                                    [--repeat 3] [--record]
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

from _report import emit  # benchmarks/_report.py (scripts run from this folder)


def main() -> None:
    # Ray starts its workers at nice 15 (RAY_worker_niceness); the in-process baseline runs at
    # the driver's priority. Same priority for both, or a busy machine favours the baseline.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="torch threads of plain TRL = CPUs of the Ray worker (default: all)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each, interleaved (plain, pdray, plain, …), each with a fresh "
                    "trainer; the table compares the fastest of each and lists every run")
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
    # plain TRL, in-process, on --threads torch threads
    threads = args.threads
    torch.set_num_threads(threads)
    ds = datasets.Dataset.from_dict(to_dpo_rows(pairs, tok))
    # the settings pdray's run below uses where trl.DPOConfig's own defaults differ:
    # gradient_checkpointing (TRL: True, pdray: dpo.gradient_checkpointing=false), bf16 (TRL:
    # True unless fp16; pdray: only on GPU)
    targs = TRLConfig(output_dir=str(tmp / "trl"), per_device_train_batch_size=args.batch,
                      max_steps=args.steps, learning_rate=5e-4, report_to="none", use_cpu=not gpu,
                      bf16=gpu, max_length=256, save_strategy="no", logging_steps=1000,
                      disable_tqdm=True, gradient_checkpointing=False)
    def plain() -> tuple[float, float]:
        trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_path), args=targs,
                             train_dataset=ds, processing_class=tok)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train()
        return time.perf_counter() - t0, time.process_time() - c0

    def pdray(k: int) -> tuple[float, float, float, int]:
        # one Ray Train worker holding the cores plain TRL used; the training loop is timed
        # inside the worker (the same trainer.train() span), end to end around train_dpo
        t0 = time.perf_counter()
        r = train_dpo(pairs, DPOConfig(model=model_path, max_steps=args.steps,
                                       batch_size=args.batch, lr=5e-4, max_length=256,
                                       use_gpu=gpu, cpus_per_worker=float(threads),
                                       save_steps=10**6, eval_fraction=0.0),
                      str(tmp / f"pdray-{k}"), echo=lambda *_: None)
        return (r.metrics["train_seconds"], r.metrics["train_cpu_seconds"],
                time.perf_counter() - t0, r.metrics["torch_threads"])

    init_ray()
    base_runs, pd_runs = [], []
    for k in range(max(1, args.repeat)):   # interleaved, so the host's drift hits both
        base_runs.append(plain())
        pd_runs.append(pdray(k))
    t_trl, c_trl = min(base_runs)
    t_pd, c_pd, _, n_thr = min(pd_runs)
    t_e2e = min(r[2] for r in pd_runs)
    load = os.getloadavg()[0]
    date = datetime.date.today().isoformat()
    dev = torch.cuda.get_device_name() if gpu else f"CPU, {os.cpu_count()} cores"
    n = len(base_runs)
    what = f"worker with {threads} CPU, {n_thr} torch thread(s)"
    lines = [(f"### dpo_throughput — {date} — {platform.machine()}, {dev} — model {args.model}, "
              f"{args.steps} steps × batch {args.batch}, best of {n} interleaved"), "",
             ("| run | seconds | tokens/s | ratio vs plain TRL | CPU seconds (process) "
              "| CPU ratio (plain / pdray) |"), "|---|---|---|---|---|---|",
             (f"| plain TRL DPOTrainer (baseline, {threads} torch threads) | {t_trl:.2f} | "
              f"{n_tok / t_trl:.0f} | 1.00 | {c_trl:.2f} | 1.00 |"),
             (f"| pdray Ray Train DPO, {what} (training loop) | {t_pd:.2f} | "
              f"{n_tok / t_pd:.0f} | {t_trl / t_pd:.2f} | {c_pd:.2f} | {c_trl / c_pd:.2f} |"),
             (f"| pdray Ray Train DPO, {what} (end to end, incl. worker start) | "
              f"{t_e2e:.2f} | {n_tok / t_e2e:.0f} | {t_trl / t_e2e:.2f} | | |"), "",
             "every run (s): plain TRL " + ", ".join(f"{t:.2f}" for t, _ in base_runs)
             + "; pdray training loop " + ", ".join(f"{r[0]:.2f}" for r in pd_runs)]
    lines += ["", f"load average {load:.1f} on {os.cpu_count()} cores", ""]
    emit("\n".join(lines), args.record)


if __name__ == "__main__":
    main()
