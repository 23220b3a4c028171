"""PD selection at scale: N synthetic rows × 4 aspects, PD (Eq. 13–15) + top-λ (Eq. 10).

Compares pdray's in-memory path (``pdray.selection.select``) with a straightforward pandas
implementation of the same math measured in the same run, and checks both pick the same ids.
Prints a table (seconds, peak RSS growth, ratio). Usage: python benchmarks/select_scale.py [N] [--record]  (--record appends to RESULTS.md)
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


def main(n: int) -> str:
    from pdray.selection import select

    scores = make_scores(n)
    with PeakRSS() as m1:
        t0 = time.perf_counter()
        res = select(scores, "pd", budget=0.3, gamma=0.95, rho=0.001)
        t_pdray = time.perf_counter() - t0
    df = scores.to_pandas()
    with PeakRSS() as m2:
        t0 = time.perf_counter()
        ids = pandas_select(df, 0.3, 0.95, 0.001)
        t_pandas = time.perf_counter() - t0
    same = ids == res.selected_ids
    date = datetime.date.today().isoformat()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"
    lines = [f"### select_scale — {date} — {machine} — N = {n:,} rows × 4 aspects, λ = 0.3",
             "", "| implementation | seconds | peak RSS growth (GiB) | time ratio vs pandas |",
             "|---|---|---|---|",
             f"| pandas (baseline) | {t_pandas:.2f} | {m2.delta / 2**30:.2f} | 1.00 |",
             (f"| pdray `select` | {t_pdray:.2f} | {m1.delta / 2**30:.2f} | "
              f"{t_pdray / t_pandas:.2f} ({t_pandas / t_pdray:.1f}× faster) |"),
             "", (f"same ids: {same}; target ≤ 5 s and ≤ 2 GiB for the selection: "
                  f"{'met' if t_pdray <= 5 and m1.delta <= 2 * 2**30 else 'NOT met'}"), ""]
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    nums = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(nums[0]) if nums else 10_000_000
    table = main(n)
    if "--record" in sys.argv:
        with open(os.path.join(os.path.dirname(__file__), "RESULTS.md"), "a") as f:
            f.write(table + "\n")
