import numpy as np
import pyarrow as pa
import pytest

from pdray.selection import compute_pd, select, select_distributed
from pdray.selection import math as M
from pdray.selection import ranking as R


def _scores(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    aspects = np.array(["a", "b", "c", "d"])
    return pa.table({
        "id": [f"p{i:06d}" for i in range(n)],
        "aspect": aspects[rng.integers(0, 4, n)].tolist(),
        "chosen_len": rng.integers(5, 200, n), "rejected_len": rng.integers(5, 200, n),
        **{f"gap_{k}": rng.normal(0.2, 1.0, n).round(2) for k in aspects},  # rounding makes ties
    })


@pytest.mark.timeout(300)
def test_distributed_equals_in_memory(ray_local):
    import ray.data

    t = _scores()
    ds = ray.data.from_arrow(t).repartition(6)
    for strategy in ("pd", "high"):
        mem = select(t, strategy, budget=0.3, gamma=0.95, rho=0.002)
        dist = select_distributed(ds, strategy, budget=0.3, gamma=0.95, rho=0.002)
        assert dist["exact"] and dist["ids"] == mem.selected_ids
        assert dist["q"] == pytest.approx(mem.manifest["q"])


@pytest.mark.timeout(300)
def test_kll_sketch_quantile_within_stated_rank_error(ray_local):
    import ray.data

    t = _scores(20000, seed=1)
    ds = ray.data.from_arrow(t).repartition(8)
    res = select_distributed(ds, "pd", budget=0.3, gamma=0.95, exact_limit=0)
    assert not res["exact"] and 0 < res["rank_error"] < 0.02
    exact = compute_pd(t, gamma=0.95).q
    own = np.asarray(t["aspect"].to_pylist())
    for k, qk in res["q"].items():
        g = np.abs(t[f"gap_{k}"].to_numpy())[own != k]
        rank = np.mean(g <= qk)                 # the sketch's answer's true rank
        assert abs(rank - 0.95) <= res["rank_error"] + 1e-9
        assert qk == pytest.approx(exact[k], rel=0.05)
    mem = set(select(t, "pd", budget=0.3).selected_ids)
    assert len(mem & set(res["ids"])) / len(mem) > 0.97
    # given the sketch's q_k, the sketch-threshold top-λ is exact: same ids as in memory
    norm = {k: M.normalize_gap(t[f"gap_{k}"].to_numpy(), res["q"][k]) for k in res["q"]}
    pd = M.preference_divergence(norm, own)
    want = R.top_lowest(pd, t["id"], 6000)
    assert res["ids"] == [t["id"][int(i)].as_py() for i in want]
    assert res["pd"] == pytest.approx(pd[want].tolist())
    assert res["counts"] == {"in": 20000, "selected": 6000, "not_selected": 14000}
