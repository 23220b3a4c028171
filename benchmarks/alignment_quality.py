"""Does the selected data train a better model? Table 1's question on real data (issue #23).

PKU-SafeRLHF 500 with the shipped ``pku`` preset end to end (data → reward models → scores →
select), then DPO of SmolLM2-135M-Instruct on each strategy's subset at λ = 0.3 with identical
DPO settings, for several seeds (the seed of the DPO run and of the ``random`` subset). Each
policy is measured on the held-out test split (:mod:`pdray.align.downstream`):

- **consensus acc**: accuracy of the implicit reward against the consensus label (both PKU
  labels agree; pairs whose two labels disagree have no consensus and are not counted) — what
  PD claims to improve;
- **conflict acc**: the same on the conflict pairs (PKU: none, the disagreeing pairs tie);
- **own acc**: against each pair's own aspect label (secondary);
- **AL**: mean generated length (greedy, tokens) on the first test prompts;
- **|margin|**: mean absolute implicit-reward margin (how far DPO moved the policy at all);
- DPO steps and wall time per row.

The ``random`` baseline is measured in the same run. Targets (the paper's direction): ``pd`` ≥
``random`` + 0.03 in consensus accuracy (mean of the seeds), and ``pd`` ≥ ``all`` while using
30 % of the data.

    python benchmarks/alignment_quality.py                       # 3 seeds, six strategies
    python benchmarks/alignment_quality.py --seeds 1 --strategies pd random --record
    python benchmarks/alignment_quality.py dpo.lr=2e-5 dpo.max_steps=30

Extra ``key.sub=value`` arguments override the preset. Runs live under ``benchmarks/_runs/``
(git-ignored); finished stages are reused, so a re-run only trains what is missing.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
PRESET = ROOT / "pdray" / "presets" / "pku_saferlhf.yaml"
DATA = ROOT.parent / "shared" / "data" / "preference" / "pku_saferlhf_500.jsonl"
STRATEGIES = ["pd", "random", "all", "oracle", "holistic", "no_debias"]
# identical DPO settings for every row: a fixed number of optimiser steps, so a row's result
# does not come from seeing more updates (ALL has 3.3x the pairs of a 30 % subset)
DPO = ["dpo.model=smollm2", "dpo.max_steps=16", "dpo.batch_size=4", "dpo.lr=1e-5",
       "dpo.max_length=256", "dpo.eval_fraction=0", "dpo.eval_sample_prompts=4",
       "dpo.eval_max_new_tokens=48", "dpo.cpus_per_worker=2"]


def run_seed(seed: int, strategies: list[str], overrides: list[str], out: Path, echo) -> list[dict]:
    from pdray.config import load_config, read_yaml
    from pdray.pipeline.config import PipelineConfig
    from pdray.pipeline.runner import run_pipeline

    base = read_yaml(PRESET)
    base["data"]["source"] = str(DATA)
    cfg = load_config(PipelineConfig, None, DPO + [
        f"select.strategies=[{','.join(strategies)}]", f"run.dpo_strategies=[{','.join(strategies)}]",
        "run.stages=[data,rm,score,select,dpo]", "run.tracking=none", f"select.seed={seed}",
        f"dpo.seed={seed}", f"run.output_dir={out}"] + overrides, base=base)
    res = run_pipeline(cfg, echo=echo)
    dpo = res.manifests["dpo"]
    rows = []
    for s in strategies:
        held = dpo.metrics[s].get("heldout") or {}
        man = json.loads((Path(dpo.models[s]).parent / "manifest.json").read_text())
        rows.append({"seed": seed, "strategy": s, "pairs": man["train_rows"],
                     "consensus": held.get("consensus_accuracy", math.nan),
                     "n_consensus": held.get("n_consensus", 0),
                     "conflict": held.get("conflict_pairs_accuracy", math.nan),
                     "own": held.get("own_label_accuracy", math.nan),
                     "al": held.get("mean_generated_length", math.nan),
                     "abs_margin": held.get("mean_abs_margin", math.nan),
                     "mean_margin": held.get("mean_margin", math.nan),
                     "steps": (man.get("metrics") or {}).get("steps"),
                     "loss": (man.get("metrics") or {}).get("train_loss", math.nan),
                     "seconds": man.get("wall_seconds", math.nan)})
    return rows


def _m(xs) -> float:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return float(np.mean(xs)) if xs else math.nan


def table(rows: list[dict], strategies: list[str], seeds: int, wall: float, overrides) -> str:
    head = (f"### alignment_quality — {time.strftime('%Y-%m-%d')} — {platform.node()} "
            f"({platform.machine()}, CPU), {seeds} seed(s), {wall / 60:.1f} min\n\n"
            f"PKU-SafeRLHF 500, pku preset, λ = 0.3, DPO of SmolLM2-135M: "
            f"{' '.join(DPO + list(overrides))}\n\n"
            "| strategy | pairs | consensus acc (mean ± sd) | conflict acc | own acc | AL | "
            "mean margin | mean abs margin | loss | steps | s / run |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    by = {s: [r for r in rows if r["strategy"] == s] for s in strategies}
    for s, rs in by.items():
        if not rs:
            continue
        c = [r["consensus"] for r in rs]
        sd = float(np.std(c)) if len(c) > 1 else 0.0
        lines.append(f"| {s} | {rs[0]['pairs']} | {_m(c):.3f} ± {sd:.3f} (n={rs[0]['n_consensus']}) "
                     f"| {_m([r['conflict'] for r in rs]):.3f} | {_m([r['own'] for r in rs]):.3f} "
                     f"| {_m([r['al'] for r in rs]):.1f} | {_m([r['mean_margin'] for r in rs]):+.4f} "
                     f"| {_m([r['abs_margin'] for r in rs]):.4f} "
                     f"| {_m([r['loss'] for r in rs]):.4f} | {rs[0]['steps']} "
                     f"| {_m([r['seconds'] for r in rs]):.0f} |")
    pd_, rnd, al = (_m([r["consensus"] for r in by.get(k, [])]) for k in ("pd", "random", "all"))
    lines.append("")
    if not math.isnan(pd_) and not math.isnan(rnd):
        lines.append(f"pd − random consensus accuracy: {pd_ - rnd:+.3f} (target ≥ +0.03: "
                     f"{'met' if pd_ - rnd >= 0.03 else 'NOT met'})")
    if not math.isnan(pd_) and not math.isnan(al):
        lines.append(f"pd − all consensus accuracy: {pd_ - al:+.3f} (target ≥ 0: "
                     f"{'met' if pd_ >= al else 'NOT met'})")
    per_seed = {r["seed"]: {} for r in rows}
    for r in rows:
        per_seed[r["seed"]][r["strategy"]] = r["consensus"]
    lines.append("per seed (consensus acc): " + "; ".join(
        f"seed {s}: " + ", ".join(f"{k} {v:.3f}" for k, v in d.items())
        for s, d in sorted(per_seed.items())))
    return "\n".join(lines)


def main(argv=None) -> int:
    from _report import emit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="key.sub=value overrides of the preset")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_runs" / "alignment_quality")
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    a = ap.parse_args(argv)
    if not DATA.is_file():
        print(f"{DATA}: PKU-SafeRLHF sample not found", file=sys.stderr)
        return 2
    t0, rows = time.time(), []
    log = a.out / "rows.jsonl"
    a.out.mkdir(parents=True, exist_ok=True)
    for seed in range(a.seeds):
        new = run_seed(seed, a.strategies, a.overrides, a.out, lambda m: print(m, flush=True))
        with open(log, "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        rows += new
        print(table(rows, a.strategies, seed + 1, time.time() - t0, a.overrides), flush=True)
    emit(table(rows, a.strategies, a.seeds, time.time() - t0, a.overrides), a.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
