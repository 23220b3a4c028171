"""GPU parity: the transformers scorer vs the vLLM scorer (``score.backend=vllm``).

Needs a CUDA GPU and vLLM (``pdray[gpu]``). Scores the same pairs (real PKU-SafeRLHF +
UltraFeedback when ../shared/data is there, else synthetic) with both backends through the
same :class:`pdray.scoring.Scorer` interface and prints max |Δgap| (per aspect, and relative to
the gaps' spread) and pairs/s of each (engine start-up reported apart).

Usage: python benchmarks/score_gpu_parity.py --rm RM_SET_DIR [--pairs 1000] [--record]
(``--rm`` a reward-model set from ``pdray rm train``; without it the pku recipe's shape is built
on SmolLM2 with untrained heads: parity only, not accuracy. The CPU version of this comparison
is ``tests/scoring/test_vllm_backends.py`` and ``score_throughput.py --recipe pku``.)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import emit  # benchmarks/_report.py (scripts run from this folder)


def pairs_table(n: int):
    from pdray.data import synthetic_pairs

    try:
        from benchmarks.score_throughput import SHARED, real_pairs

        if SHARED.is_dir():
            return real_pairs(n), "real (PKU-SafeRLHF + UltraFeedback)"
    except ImportError:
        pass
    cols = ["id", "aspect", "prompt", "chosen", "rejected"]
    return synthetic_pairs(n, aspects=["helpfulness", "harmlessness"], seed=0).select(cols), \
        "synthetic"


def timed_score(scorer, t) -> tuple[dict, float]:
    t0 = time.perf_counter()
    rewards, _ = scorer.score(t["prompt"].to_pylist(), t["chosen"].to_pylist(),
                              t["rejected"].to_pylist())
    return {k: rc - rr for k, (rc, rr) in rewards.items()}, time.perf_counter() - t0


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--rm", default=None)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("score_gpu_parity needs a CUDA GPU")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from pdray.raysetup import init_ray
    from pdray.rm.model_set import RewardModelSet
    from pdray.scoring import ScoreConfig, make_scorer

    root = args.rm
    if root is None:
        # the pku recipe's shape (SmolLM2 layer 21, mean pooling, multi_head): vLLM serves it;
        # it refuses the MiniLM set (a mean-pooled BERT classifier)
        from benchmarks.score_throughput import build_pku_set

        root = str(build_pku_set(Path(tempfile.mkdtemp()) / "rms"))
    rm_set = RewardModelSet.load(root)
    t, kind = pairs_table(args.pairs)
    init_ray(quiet=True)
    rows = {}
    for backend in ("hf", "vllm"):   # the scorers the actors hold (ray_llm is a pipeline)
        cfg = ScoreConfig(backend=backend, gpus_per_actor=1, dtype="bfloat16")
        t0 = time.perf_counter()
        scorer = make_scorer(rm_set, root, cfg)
        start = time.perf_counter() - t0
        timed_score(scorer, t.slice(0, min(32, t.num_rows)))  # warm-up (engine start, kernels)
        gaps, sec = timed_score(scorer, t)
        rows[backend] = (gaps, sec, start)
        del scorer
        torch.cuda.empty_cache()
    hf, vl = rows["hf"][0], rows["vllm"][0]
    out = [f"### score_gpu_parity — {datetime.date.today().isoformat()} — "
           f"{torch.cuda.get_device_name(0)}, {platform.machine()}, {os.cpu_count()} cores — "
           f"{t.num_rows} {kind} pairs, reward set {root} ({rm_set.mode}), bf16", "",
           "| backend | load s | score s | pairs/s |", "|---|---|---|---|"]
    for b, (_, sec, start) in rows.items():
        out.append(f"| {b} | {start:.1f} | {sec:.2f} | {t.num_rows / sec:.0f} |")
    out += ["", "| gap | max abs Δgap (hf vs vllm) | gap std (hf) | max abs Δ / std |",
            "|---|---|---|---|"]
    for k in hf:
        d = float(np.max(np.abs(hf[k] - vl[k])))
        s = float(np.std(hf[k])) or 1.0
        out.append(f"| gap_{k} | {d:.4g} | {s:.4g} | {d / s:.3g} |")
    emit("\n".join(out), args.record)


if __name__ == "__main__":
    main()
