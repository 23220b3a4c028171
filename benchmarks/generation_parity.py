"""Generation parity: greedy answers of transformers (``generate_hf``) vs vLLM (``generate_vllm``).

Runs on CPU (vLLM's CPU build) or a GPU. Generates the first N prompts of a shared evaluation
set with both backends in the same dtype (float32 by default) and prints the share of prompts
whose answers are the same string, vLLM's engine start and generation seconds, and
transformers' load and generation seconds (each read from the backends' own log lines).

Usage: python benchmarks/generation_parity.py [--model smollm2] [--set vicuna] [--n 20]
       [--max-new-tokens 32] [--dtype float32] [--vllm enforce_eager=false ...] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import time

from _report import emit  # benchmarks/_report.py (scripts run from this folder)


def seconds(lines: list[str], pattern: str) -> float:
    """The seconds in the first log line matching ``pattern`` (a regex with one group)."""
    for line in lines:
        m = re.search(pattern, line)
        if m:
            return float(m.group(1))
    raise SystemExit(f"no log line matches {pattern!r}: {lines}")


def parse_kv(items: list[str]) -> dict:
    """``["enforce_eager=false", "max_model_len=2048"]`` → ``{"enforce_eager": False, ...}``."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value not in ("", None) else True
    return out


def timed(fn, *args) -> tuple[list[str], list[str], float]:
    lines: list[str] = []
    t0 = time.perf_counter()
    out = fn(*args, lines.append)
    return out, lines, time.perf_counter() - t0


def main() -> None:
    import torch

    from pdray.eval import GenerationConfig
    from pdray.eval.generate import _resolve_model, generate_hf, generate_vllm
    from pdray.eval.prompts import load_prompt_set

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--set", default="vicuna")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--vllm", nargs="*", default=[], help="extra vllm.LLM kwargs, KEY=JSON")
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()

    model = _resolve_model(args.model)
    table = load_prompt_set(args.set, limit=args.n)
    prompts = table["prompt"].to_pylist()
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           dtype=args.dtype, vllm=parse_kv(args.vllm))
    threads = torch.get_num_threads()
    hf, hf_log, hf_total = timed(generate_hf, model, prompts, gen)
    vl, vl_log, vl_total = timed(generate_vllm, model, prompts, gen)
    same = sum(a == b for a, b in zip(hf, vl))
    hf_load = seconds(hf_log, r"model loaded in ([\d.]+)s")
    hf_gen = hf_total - hf_load
    vl_start = seconds(vl_log, r"engine started in ([\d.]+)s")
    vl_gen = seconds(vl_log, r"vllm generated \d+ in ([\d.]+)s")
    for n, (a, b) in enumerate(zip(hf, vl)):
        if a != b:
            print(f"differs on prompt {n}:\n  hf:   {a!r}\n  vllm: {b!r}")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    device = "cuda" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    title = (f"### generation_parity — {date} — {platform.node()} {device}, torch threads "
             f"{threads} → {torch.get_num_threads()} after vLLM")
    setup = (f"{args.model}, {args.set} first {len(prompts)} prompts, max_new_tokens "
             f"{args.max_new_tokens}, {args.dtype}, greedy; "
             f"vllm kwargs {gen.vllm or 'pdray defaults'}")
    head = ("| agreement | vLLM engine start s | vLLM generate s | HF load s | HF generate s "
            "| HF/vLLM generate |")
    row = (f"| {same}/{len(prompts)} ({same / len(prompts):.0%}) | {vl_start:.1f} "
           f"| {vl_gen:.1f} | {hf_load:.1f} | {hf_gen:.1f} | {hf_gen / max(vl_gen, 1e-9):.2f} |")
    wall = f"(wall: vLLM {vl_total:.1f} s incl. shutdown, HF {hf_total:.1f} s)"
    rule = "|---" * 6 + "|"
    text = f"{title}\n\n{setup}\n\n{head}\n{rule}\n{row}\n\n{wall}"
    emit(text, args.record)


if __name__ == "__main__":  # vLLM spawns its engine process
    main()
