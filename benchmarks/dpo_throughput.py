"""DPO training throughput: pdray's Ray Train DPO against plain TRL on the same model and data.

Both train ``--steps`` steps of batch ``--batch`` on the same pairs (synthetic by default) with the
same model (``--model tiny`` or ``smollm2`` or a path); tokens/s counts prompt+response tokens of
the pairs seen. Plain TRL runs torch on ``--threads`` threads (default: every core) and the Ray
worker holds as many CPUs (``cpus_per_worker``; a CPU worker runs torch on that many threads). Uses CUDA when it is there. Usage:
python benchmarks/dpo_throughput.py [--model tiny] [--steps 20] [--batch 8] [--threads N] [--record]
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
    ap.add_argument("--baseline-runs", type=int, default=2,
                    help="plain TRL runs, each with a fresh trainer; the first one in the "
                    "process pays one-off costs the Ray worker pays before its timer starts, "
                    "so the table's baseline is the fastest run (every run is listed)")
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
    targs = TRLConfig(output_dir=str(tmp / "trl"), per_device_train_batch_size=args.batch,
                      max_steps=args.steps, learning_rate=5e-4, report_to="none", use_cpu=not gpu,
                      bf16=gpu, max_length=256, save_strategy="no", logging_steps=1000,
                      disable_tqdm=True)
    base_runs = []
    for _ in range(max(1, args.baseline_runs)):
        trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_path), args=targs,
                             train_dataset=ds, processing_class=tok)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train()
        base_runs.append((time.perf_counter() - t0, time.process_time() - c0))
    t_trl, c_trl = min(base_runs)
    # pdray on Ray Train, one worker holding the cores plain TRL used (train time measured inside
    # the worker, and end to end)
    init_ray()
    runs = {}
    for cpus in [float(threads)]:
        t0 = time.perf_counter()
        r = train_dpo(pairs, DPOConfig(model=model_path, max_steps=args.steps,
                                       batch_size=args.batch, lr=5e-4, max_length=256,
                                       use_gpu=gpu, cpus_per_worker=cpus, save_steps=10**6,
                                       eval_fraction=0.0),
                      str(tmp / f"pdray-{cpus:g}"), echo=lambda *_: None)
        runs[cpus] = (r.metrics["train_seconds"], time.perf_counter() - t0,
                      r.metrics["train_cpu_seconds"], r.metrics["torch_threads"])
    load = os.getloadavg()[0]
    date = datetime.date.today().isoformat()
    dev = torch.cuda.get_device_name() if gpu else f"CPU, {os.cpu_count()} cores"
    lines = [(f"### dpo_throughput — {date} — {platform.machine()}, {dev} — model {args.model}, "
              f"{args.steps} steps × batch {args.batch}"), "",
             ("| run | seconds | tokens/s | ratio vs plain TRL | CPU seconds (process) "
              "| CPU ratio (plain / pdray) |"), "|---|---|---|---|---|---|",
             (f"| plain TRL DPOTrainer (baseline, {threads} torch threads, fastest of "
              f"{len(base_runs)}) | {t_trl:.2f} | {n_tok / t_trl:.0f} | 1.00 | {c_trl:.2f} | 1.00 |")]
    lines += [(f"| … plain TRL run {i + 1} of {len(base_runs)} | {t:.2f} | {n_tok / t:.0f} | "
               f"{t_trl / t:.2f} | {c:.2f} | {c_trl / c:.2f} |")
              for i, (t, c) in enumerate(base_runs)]
    for cpus, (t_pd, t_e2e, c_pd, n_thr) in runs.items():
        what = f"worker with {cpus:g} CPU, {n_thr} torch thread(s)"
        lines += [(f"| pdray Ray Train DPO, {what} (training loop) | {t_pd:.2f} | "
                   f"{n_tok / t_pd:.0f} | {t_trl / t_pd:.2f} | {c_pd:.2f} | {c_trl / c_pd:.2f} |"),
                  (f"| pdray Ray Train DPO, {what} (end to end, incl. worker start) | "
                   f"{t_e2e:.2f} | {n_tok / t_e2e:.0f} | {t_trl / t_e2e:.2f} | | |")]
    lines += ["", f"load average {load:.1f} on {os.cpu_count()} cores", ""]
    emit("\n".join(lines), args.record)


if __name__ == "__main__":
    main()
