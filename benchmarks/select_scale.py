"""PD selection at scale: N synthetic rows × 4 aspects, PD (Eq. 13–15) + top-λ (Eq. 10).

Compares pdray's in-memory path (``pdray.selection.select``, end to end: contract check, input
hash, output table and id list included) with a straightforward pandas implementation and a
polars implementation of the same math, measured in the same run (best of ``--repeat``), and
asserts all three pick the same ids in the same order. A fourth row times pdray's selection
math alone (``compute_pd`` + ``top_lowest``). Prints a table (seconds, peak RSS growth, ratio).
Usage: python benchmarks/select_scale.py [N] [--repeat R] [--record]  (--record appends to RESULTS.md)
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import threading
import time

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

from pdray.length_modes import LengthTerm

ASPECTS = ["helpfulness", "honesty", "instruction_following", "truthfulness"]


def make_scores(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    own = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, n).astype(np.int32)),
                                         pa.array(ASPECTS)).cast(pa.string())
    ids = pa.array(np.char.add("p", np.arange(n).astype("U10")))
    cols = {"id": ids, "aspect": own, "chosen_len": rng.integers(5, 400, n),
            "rejected_len": rng.integers(5, 400, n)}
    for a in ASPECTS:
        cols[f"gap_{a}"] = rng.normal(0.3, 1.0, n)
    return pa.table(cols)


def pandas_select(df: pd.DataFrame, budget: float, gamma: float, rho: float) -> list[str]:
    """The obvious pandas implementation of Eq. 13–15 and 10."""
    dlen = df["chosen_len"] - df["rejected_len"]
    pd_sum = pd.Series(0.0, index=df.index)
    for a in ASPECTS:
        g = df[f"gap_{a}"] - rho * dlen
        q = g[df["aspect"] != a].abs().quantile(gamma)
        pd_sum += ((g / q).clip(-1, 1)).where(df["aspect"] != a, 0.0)
    out = df.assign(pd=-pd_sum).sort_values(["pd", "id"])
    return out["id"].head(int(np.floor(budget * len(df) + 0.5))).tolist()


def polars_select(df, budget: float, gamma: float, rho: float) -> list[str]:
    """The same math written the polars way (a user's other choice): lazy expressions, polars'
    own linear quantile, sort by (pd, id)."""
    import polars as pl

    dlen = pl.col("chosen_len").cast(pl.Float64) - pl.col("rejected_len").cast(pl.Float64)
    gap = {a: pl.col(f"gap_{a}") - rho * dlen for a in ASPECTS}
    q = df.select([gap[a].filter(pl.col("aspect") != a).abs()
                   .quantile(gamma, interpolation="linear").alias(a) for a in ASPECTS]).row(0, named=True)
    terms = [pl.when(pl.col("aspect") != a).then((gap[a] / q[a]).clip(-1.0, 1.0)).otherwise(0.0)
             for a in ASPECTS]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    k = int(np.floor(budget * df.height + 0.5))
    out = (df.lazy().select("id", (-total + 0.0).alias("pd"))      # + 0.0: −0.0 ties with 0.0
           .sort(["pd", "id"]).head(k).collect())
    return out["id"].to_list()


def pdray_core(scores: pa.Table, budget: float, gamma: float, rho: float) -> list[str]:
    """pdray's selection math alone: PD (compute_pd, contract check included) and top-λ."""
    from pdray.selection import compute_pd
    from pdray.selection import math as M
    from pdray.selection import ranking as R
    pd_ = compute_pd(scores, length=LengthTerm.of("penalty", rho), gamma=gamma).pd
    keep = R.top_lowest(pd_, scores["id"], M.budget_count(scores.num_rows, budget))
    return scores["id"].take(pa.array(keep)).to_pylist()


class PeakRSS:
    def __init__(self):
        self.proc, self.peak, self.stop = psutil.Process(), 0, False

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *a):
        self.stop = True
        self.t.join()
        self.delta = max(0, self.peak - self.base)


def timed(repeat: int, fn, *args, **kwargs):
    """(best seconds, the peak RSS growth and CPU seconds (all threads) of that run, result)
    over ``repeat`` runs."""
    best = None
    for _ in range(repeat):
        with PeakRSS() as m:
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or dt < best[0]:
            best = (dt, m.delta, cpu, out)
        del out
    return best


def main(n: int, repeat: int = 1) -> tuple[str, bool]:
    import polars as pl

    from pdray.selection import select
    from pdray.selection.api import check_ids

    budget, gamma, rho = 0.3, 0.95, 0.001
    scores = make_scores(n)
    load0 = os.getloadavg()[0]
    df = scores.to_pandas()
    t_pandas, m_pandas, c_pandas, ids_pandas = timed(repeat, pandas_select, df, budget, gamma, rho)
    del df
    pdf = pl.from_arrow(scores)
    t_polars, m_polars, c_polars, ids_polars = timed(repeat, polars_select, pdf, budget, gamma, rho)
    del pdf
    t_core, m_core, c_core, ids_core = timed(repeat, pdray_core, scores, budget, gamma, rho)
    t_pdray, m_pdray, c_pdray, res = timed(repeat, select, scores, "pd", budget=budget,
                                         gamma=gamma, length=LengthTerm.of("penalty", rho))
    t_ids, m_ids, c_ids, _ = timed(repeat, check_ids, scores)
    ids = res.selected_ids
    same = {"polars": ids_polars == ids_pandas, "pdray core": ids_core == ids_pandas,
            "pdray select": ids == ids_pandas}
    load1 = os.getloadavg()[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB")
    gib = 2 ** 30

    def row(name, t, m, c):
        ratio = "1.00" if t == t_pandas else f"{t / t_pandas:.2f} ({t_pandas / t:.1f}× faster)"
        return f"| {name} | {t:.2f} | {c:.2f} | {m / gib:.2f} | {ratio} |"

    met = t_pdray <= 1.5 and m_pdray <= 2 * gib and t_pandas / t_pdray >= 5
    lines = [(f"### select_scale — {date} — {machine} — N = {n:,} rows × 4 aspects, λ = 0.3, "
              f"best of {repeat}"), "",
             ("| implementation | seconds | CPU seconds (all threads) | peak RSS growth (GiB) "
              "| time ratio vs pandas |"),
             "|---|---|---|---|---|",
             row("pandas (baseline)", t_pandas, m_pandas, c_pandas),
             row("polars (same math)", t_polars, m_polars, c_polars),
             row("pdray `select` (end to end)", t_pdray, m_pdray, c_pdray),
             row("pdray selection math only (`compute_pd` + `top_lowest`)", t_core, m_core,
                 c_core)]
    lines.append(row("… of `select`: `check_ids` alone (unique ids: a polars hash per id, "
                     "distinct hashes counted)", t_ids, m_ids, c_ids))
    lines += [
             "", ("same ids as pandas, in the same order: "
                  + ", ".join(f"{k} {v}" for k, v in same.items())
                  + f"; load average {load0:.1f} → {load1:.1f} on {os.cpu_count()} cores"),
             f"target (pdray `select` ≤ 1.5 s, ≤ 2 GiB, ≥ 5× pandas): {'met' if met else 'NOT met'}",
             ""]
    table = "\n".join(lines)
    print(table)
    return table, all(same.values())


if __name__ == "__main__":
    args = sys.argv[1:]
    if {"-h", "--help"} & set(args):
        print(__doc__)
        sys.exit(0)
    repeat = int(args[args.index("--repeat") + 1]) if "--repeat" in args else 1
    nums = [a for i, a in enumerate(args) if not a.startswith("--")
            and (i == 0 or args[i - 1] != "--repeat")]
    n = int(nums[0]) if nums else 10_000_000
    table, same = main(n, repeat)
    if "--record" in args:
        with open(os.path.join(os.path.dirname(__file__), "RESULTS.md"), "a") as f:
            f.write("\n" + table + "\n")
    assert same, "the implementations picked different ids"
