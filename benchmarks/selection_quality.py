"""Selection quality on real data: does PD pick better-than-random pairs? (issue #11)

The pipeline's default recipe end to end — ``pdray run`` with stages data → rm → score → select,
from the shipped preset of each dataset — for several seeds of the aspect assignment, then for
each budget λ the consensus precision (CP: share of kept pairs whose label agrees with the
holistic, mean-of-aspects preference) of:

- ``pd`` (ours), ``mid``, ``high``, ``true_pd`` (PD from the ground-truth ratings: the ceiling);
- ``random``: its expected value, the CP of the whole dataset;
- ``len_pd``: the same PD formula with r(x, y) = len(y) for every aspect (a length-only ranking);

and ``gap closed`` = (CP(pd) − CP(random)) / (CP(true_pd) − CP(random)), the mean Δlen of each
subset in characters (chosen − rejected) beside the whole dataset's, the reward models' held-out
accuracy and the minutes per seed. Targets (PKU-SafeRLHF, λ = 0.3, mean of 5 seeds): gap closed
≥ 0.30; pd above mid and above len_pd in ≥ 4 of 5 seeds; the pd subset's mean Δlen within ±50
characters of the dataset's; ≤ 15 minutes per seed on 2 cores.

    python benchmarks/selection_quality.py                       # PKU, 5 seeds
    python benchmarks/selection_quality.py --dataset helpsteer2 --seeds 2
    python benchmarks/selection_quality.py rm.length_debias=penalty --label penalty

Extra ``key.sub=value`` arguments override the preset (a recipe to compare). Runs live under
``benchmarks/_runs/`` (git-ignored); a re-run with the same settings reuses finished stages.
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
import pyarrow as pa

from pdray.length_modes import LengthTerm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "preference"
DATASETS = {
    "pku": (ROOT / "pdray" / "presets" / "pku_saferlhf.yaml", SHARED / "pku_saferlhf_500.jsonl"),
    "helpsteer2": (ROOT / "jobs" / "configs" / "helpsteer2.yaml", SHARED / "helpsteer2_100.jsonl"),
}
STRATEGIES = ["pd", "mid", "high", "true_pd"]
BUDGETS = (0.1, 0.2, 0.3, 0.5)


def run_seed(dataset: str, seed: int, overrides: list[str], out: Path, echo) -> dict:
    """One seed of the recipe: the pipeline up to selection, then every metric."""
    from pdray.config import load_config, read_yaml
    from pdray.pipeline.config import PipelineConfig
    from pdray.pipeline.runner import run_pipeline

    preset, source = DATASETS[dataset]
    base = read_yaml(preset)
    base["data"]["source"] = str(source)
    base["data"]["seed"] = seed          # seeds the aspect assignment (PKU: split) and splits
    base.setdefault("rm", {})["seed"] = seed
    base["data"]["test_fraction"] = 0.0
    base["select"]["strategies"] = STRATEGIES
    base["run"] = {**base.get("run", {}), "output_dir": str(out), "tracking": "none",
                   "stages": ["data", "rm", "score", "select"]}
    cfg = load_config(PipelineConfig, None, overrides, base=base)
    t0 = time.perf_counter()
    res = run_pipeline(cfg, echo=echo)
    minutes = (time.perf_counter() - t0) / 60
    timing = out / "minutes.json"   # the first (uncached) run's wall time is the one reported
    if timing.exists():
        minutes = json.loads(timing.read_text())["minutes"]
    else:
        timing.write_text(json.dumps({"minutes": minutes}))
    return {"minutes": minutes, **measure(res.stages, cfg)}


def measure_run(out: Path) -> dict:
    """The metrics of a finished run folder (``run.json``, ``config.yaml``, ``minutes.json``)."""
    from pdray.config import load_config
    from pdray.pipeline.config import PipelineConfig

    info = json.loads((out / "run.json").read_text())["stages"]
    cfg = load_config(PipelineConfig, str(out / "config.yaml"))
    minutes = json.loads((out / "minutes.json").read_text())["minutes"]
    return {"minutes": minutes, **measure(info, cfg)}


def measure(info: dict, cfg) -> dict:
    """CP per strategy and budget, gap closed, Δlen in characters, RM accuracy."""
    from pdray.data.stats import conflict_flags
    from pdray.io import read_table
    from pdray.selection import select
    from pdray.selection.scores import length_term, read_scores

    pairs = read_table(info["data"]["train"])
    scores = read_scores(info["score"]["scores"])
    term = length_term(info["score"]["scores"])
    rho, mode = term.rho, term.mode
    agree = dict(zip(pairs["id"].to_pylist(), conflict_flags(pairs).tolist()))
    chars = dict(zip(pairs["id"].to_pylist(),
                     (np.array([len(c) for c in pairs["chosen"].to_pylist()])
                      - np.array([len(r) for r in pairs["rejected"].to_pylist()])).tolist()))
    ids_all = scores["id"].to_pylist()
    cp = lambda ids: float(np.mean([agree[i] > 0 for i in ids]))
    dch = lambda ids: float(np.mean([chars[i] for i in ids]))
    dlen = (np.asarray(scores["chosen_len"], float) - np.asarray(scores["rejected_len"], float))
    length_scores = scores.select(["id", "aspect", "chosen_len", "rejected_len"])
    for c in [c for c in scores.column_names if c.startswith("gap_")]:
        length_scores = length_scores.append_column(c, pa.array(dlen))
    out = {"budgets": {}, "random_cp": cp(ids_all), "all_dlen_chars": dch(ids_all),
           "length_mode": mode, "rho": rho}
    for lam in BUDGETS:
        row = {}
        for s in STRATEGIES:
            sel = select(scores, s, length=LengthTerm.of(mode, rho), budget=lam,
                         gamma=cfg.select.gamma, seed=cfg.select.seed, pairs=pairs)
            row[s] = {"cp": cp(sel.selected_ids), "dlen_chars": dch(sel.selected_ids)}
        alt = select(scores, "pd", length=LengthTerm.of(mode, rho), budget=lam,
                     gamma=cfg.select.gamma, fit_length=mode != "learned", seed=cfg.select.seed,
                     pairs=pairs)
        row["pd_alt"] = {"cp": cp(alt.selected_ids), "dlen_chars": dch(alt.selected_ids),
                         "fit_length": mode != "learned"}
        sel = select(length_scores, "pd", length=LengthTerm.of("none", 0.0), budget=lam,
                     gamma=cfg.select.gamma, seed=cfg.select.seed)
        row["len_pd"] = {"cp": cp(sel.selected_ids), "dlen_chars": dch(sel.selected_ids)}
        r, t = out["random_cp"], row["true_pd"]["cp"]
        row["gap_closed"] = (row["pd"]["cp"] - r) / (t - r) if t > r else math.nan
        out["budgets"][lam] = row
    metrics = json.loads((Path(info["rm"]["dir"]) / "metrics.json").read_text())
    out["rm_accuracy"] = {k: v["heldout_accuracy"] for k, v in metrics["own"].items()}
    out["rm_length_only"] = {k: v["length_only_accuracy"] for k, v in metrics["own"].items()}
    return out


def table(results: list[dict], lam: float) -> str:
    """Markdown table of one budget over the seeds, then the means."""
    cols = ["seed", "pd", "random", "mid", "high", "len_pd", "true_pd", "gap closed",
            "Δlen pd", "Δlen all", "pd†", "Δlen pd†", "RM acc", "min"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    agg: dict[str, list] = {c: [] for c in cols[1:]}
    for res in results:
        b = res["budgets"][lam]
        vals = {"pd": b["pd"]["cp"], "random": res["random_cp"], "mid": b["mid"]["cp"],
                "high": b["high"]["cp"], "len_pd": b["len_pd"]["cp"], "true_pd": b["true_pd"]["cp"],
                "gap closed": b["gap_closed"], "Δlen pd": b["pd"]["dlen_chars"],
                "Δlen all": res["all_dlen_chars"], "pd†": b["pd_alt"]["cp"],
                "Δlen pd†": b["pd_alt"]["dlen_chars"],
                "RM acc": _mean_known(res["rm_accuracy"].values()),
                "min": res["minutes"]}
        for k, v in vals.items():
            agg[k].append(v)
        lines.append(f"| {res['seed']} | " + " | ".join(_f(k, v) for k, v in vals.items()) + " |")
    lines.append("| **mean** | " + " | ".join(_f(k, float(np.nanmean(v))) for k, v in agg.items())
                 + " |")
    return "\n".join(lines)


def _mean_known(values) -> float:
    """Mean of the values that exist (an aspect without held-out pairs has no accuracy); NaN
    when none does."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else math.nan


def _f(k: str, v: float) -> str:
    if k.startswith("Δlen"):
        return f"{v:+.0f}"
    if k == "min":
        return f"{v:.1f}"
    return f"{v:+.3f}" if k == "gap closed" else f"{v:.3f}"


def verdict(results: list[dict], lam: float = 0.3) -> list[str]:
    rows = [r["budgets"][lam] for r in results]
    closed = float(np.nanmean([b["gap_closed"] for b in rows]))
    above_mid = sum(b["pd"]["cp"] > b["mid"]["cp"] for b in rows)
    above_len = sum(b["pd"]["cp"] > b["len_pd"]["cp"] for b in rows)
    dl = float(np.mean([b["pd"]["dlen_chars"] - r["all_dlen_chars"] for b, r in zip(rows, results)]))
    worst = max(r["minutes"] for r in results)
    n = len(rows)
    return [f"gap closed at λ={lam}: {closed:+.3f} (target ≥ 0.30) — {'met' if closed >= 0.3 else 'MISSED'}",
            f"pd > mid in {above_mid}/{n} seeds, pd > len_pd in {above_len}/{n} (target ≥ 4 of 5)",
            f"pd subset Δlen − dataset Δlen: {dl:+.0f} chars (target within ±50) — "
            f"{'met' if abs(dl) <= 50 else 'MISSED'}",
            f"slowest seed: {worst:.1f} min (target ≤ 15 on 2 cores)"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=sorted(DATASETS), default="pku")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--label", default="default")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "_runs" / "selection_quality"))
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--measure-only", action="store_true",
                    help="re-measure finished runs (their run.json) without running anything")
    ap.add_argument("overrides", nargs="*", help="key.sub=value overrides of the preset")
    a = ap.parse_args(argv)
    results = []
    quiet = lambda *x, **k: None
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        out = Path(a.out) / f"{a.dataset}-{a.label}-s{seed}"
        t0 = time.perf_counter()
        print(f"[selection_quality] {a.dataset} seed {seed} ({a.label}) …", flush=True)
        if a.measure_only:
            res = {"seed": seed, **measure_run(out)}
        else:
            res = {"seed": seed, **run_seed(a.dataset, seed, a.overrides, out, quiet)}
        b = res["budgets"][0.3]
        print(f"[selection_quality] seed {seed}: λ=0.3 pd CP {b['pd']['cp']:.3f} vs random "
              f"{res['random_cp']:.3f}, gap closed {b['gap_closed']:+.3f}, RM acc "
              f"{res['rm_accuracy']} ({(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
        results.append(res)
    print(f"\n### {a.dataset}, recipe '{a.label}' {' '.join(a.overrides)} — "
          f"{time.strftime('%Y-%m-%d')}, {platform.machine()} {_cores()} cores\n")
    fit = results[0]["budgets"][0.3]["pd_alt"]["fit_length"]
    print(f"pd† = pd with select.fit_length={fit} (the other length calibration, same scores)\n")
    for lam in BUDGETS:
        print(f"λ = {lam}\n\n{table(results, lam)}\n")
    for line in verdict(results):
        print(f"- {line}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
