"""The fast paths of selection at scale give the plain formulas' results bit for bit.

``compute_pd`` (fused blocks, sample-placed quantile windows, threads, the contract check first
on the shared aspect codes) is held to ``length_adjusted_gap`` → ``pd_from_gaps`` (np.quantile, np.clip,
np.where), and ``top_lowest`` (packed-key sort, Arrow id tie-break) to ``top_lowest_reference``
(full partition, stable argsort, one id sort per tied run). The thresholds are lowered so that
small tables take every large-table branch.
"""

import numpy as np
import pyarrow as pa
import pytest

from pdray.errors import DataError, PdrayError
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.selection import compute_pd, pd_from_gaps, select
from pdray.selection import math as M
from pdray.selection import parallel as P
from pdray.selection import ranking as R
from pdray.selection.pd import aspect_codes


@pytest.fixture(params=["small", "large"])
def paths(request, monkeypatch):
    """'large': the thresholds lowered so a few thousand rows use windows, blocks, threads."""
    if request.param == "large":
        monkeypatch.setattr(P, "PARALLEL_MIN", 512)
        monkeypatch.setattr(P, "SAMPLE", 128)
        monkeypatch.setattr(P, "BLOCK", 777)      # odd: blocks end mid-way through everything
        monkeypatch.setattr(P, "THREADS", 3)
    return request.param


def _table(n, seed=0, decimals=None, aspects=("a", "b", "c", "d"), shuffle_ids=True):
    rng = np.random.default_rng(seed)
    names = np.array(aspects)
    ids = np.array([f"p{i:07d}" for i in range(n)], dtype=object)
    if shuffle_ids:
        rng.shuffle(ids)
    cols = {"id": ids.tolist(), "aspect": names[rng.integers(0, len(names), n)].tolist(),
            "chosen_len": rng.integers(5, 400, n), "rejected_len": rng.integers(5, 400, n)}
    for k in aspects:
        g = rng.normal(0.3, 1.0, n)
        cols[f"gap_{k}"] = g if decimals is None else g.round(decimals)
    return pa.table(cols)


def _reference_pd(t, gamma, rho, mode, weights=None):
    own = np.asarray(t["aspect"].to_pylist(), dtype=object)
    dlen = (t["chosen_len"].to_numpy().astype(np.float64)
            - t["rejected_len"].to_numpy().astype(np.float64))
    aspects = sorted(set(own))
    gaps = {k: M.length_adjusted_gap(t[f"gap_{k}"].to_numpy().astype(np.float64), dlen, rho, mode)
            for k in aspects}
    q, norm = {}, {}
    for k, g in gaps.items():                 # the plain formulas, np.quantile included
        outside = own != k
        q[k] = float(np.quantile(np.abs(g[outside]), gamma))
        norm[k] = np.clip(g / q[k], -1.0, 1.0)
    return M.preference_divergence(norm, own, weights), q


def _bits(x):
    return np.asarray(x, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize("gamma,rho,mode", [(0.95, 0.001, "penalty"), (0.5, 0.0, "penalty"),
                                            (1.0, 0.01, "penalty"), (0.05, 0.0, "poe"),
                                            (0.95, 0.3, "learned"), (0.9, 0.0, "none")])
def test_compute_pd_bit_identical(paths, gamma, rho, mode):
    t = _table(5000, seed=1, decimals=2)
    r = compute_pd(t, length=LengthTerm.of(mode, rho), gamma=gamma)
    want, q = _reference_pd(t, gamma, rho, mode)
    assert r.q == q                                    # exact, not approx
    assert np.array_equal(_bits(r.pd), _bits(want))    # same bits, signed zeros included
    ref = pd_from_gaps({k: M.length_adjusted_gap(
        t[f"gap_{k}"].to_numpy(), t["chosen_len"].to_numpy() - t["rejected_len"].to_numpy(),
        rho, mode) for k in r.aspects}, np.asarray(t["aspect"].to_pylist()), gamma=gamma)
    assert np.array_equal(_bits(r.normalized["b"]), _bits(ref.normalized["b"]))


def test_compute_pd_weights_and_chunked_input(paths):
    t = _table(4000, seed=2)
    chunked = pa.concat_tables([t.slice(0, 1234), t.slice(1234, 10), t.slice(1244)])
    w = {"a": 2.0, "c": 0.5}
    r = compute_pd(chunked, length=LengthTerm.of("penalty", 0.002), gamma=0.9, aspect_weights=w)
    want, q = _reference_pd(t, 0.9, 0.002, "penalty", w)
    assert r.q == q and np.array_equal(_bits(r.pd), _bits(want))


def test_quantile_window_misses_fall_back_exactly(monkeypatch):
    monkeypatch.setattr(P, "PARALLEL_MIN", 512)
    monkeypatch.setattr(P, "SAMPLE", 128)
    n = 20000
    # every value the strided sample sees is 0, the rest are large: the window misses
    x = np.where(np.arange(n) % (n // 128) == 0, 0.0, np.linspace(1, 2, n))
    for g in (0.0, 0.05, 0.5, 0.95, 1.0):
        assert M.linear_quantile(x, g) == float(np.quantile(x, g))
    t = pa.table({"id": [f"i{i}" for i in range(n)], "aspect": ["a", "b"] * (n // 2),
                  "chosen_len": np.zeros(n, int), "rejected_len": np.zeros(n, int),
                  "gap_a": x, "gap_b": x[::-1].copy()})
    want, q = _reference_pd(t, 0.95, 0.0, "penalty")
    r = compute_pd(t, length=NO_LENGTH, gamma=0.95)
    assert r.q == q and np.array_equal(_bits(r.pd), _bits(want))


@pytest.mark.parametrize("seed", range(6))
def test_linear_quantile_is_np_quantile(monkeypatch, seed):
    monkeypatch.setattr(P, "PARALLEL_MIN", 256)
    monkeypatch.setattr(P, "SAMPLE", 64)
    rng = np.random.default_rng(seed)
    for n in (256, 257, 1000, 4099):
        for x in (rng.normal(size=n), rng.integers(0, 5, n).astype(float), np.sort(rng.random(n))):
            for g in (0.0, 1e-9, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999, 1.0, rng.random()):
                assert M.linear_quantile(x, g) == float(np.quantile(x, g)), (n, g)
    x = rng.normal(size=1000)
    x[17] = np.nan
    assert np.isnan(M.linear_quantile(x, 0.9))


def _ids_of(t, idx):
    return t["id"].take(pa.array(idx)).to_pylist()


@pytest.mark.parametrize("kind", ["arrow", "numpy"])
def test_top_lowest_many_ties_ids_decide(paths, kind):
    rng = np.random.default_rng(3)
    n = 6000
    score = rng.integers(-6, 3, n) / 4.0                  # 9 distinct values: huge tied runs
    score[rng.random(n) < 0.1] *= -1.0                    # −0.0 and +0.0 both present
    score[:50] = -0.0
    ids = [f"id-{v}" for v in rng.permutation(n)]         # ids unrelated to row order
    ids_arg = pa.chunked_array([ids[:2500], ids[2500:]]) if kind == "arrow" else \
        np.asarray(ids, dtype=object)
    for k in (1, 7, 999, 1800, 3000, n - 1, n, n + 5):
        got = R.top_lowest(score, ids_arg, k)
        want = R.top_lowest_reference(score, np.asarray(ids, dtype=object), k)
        assert got.tolist() == want.tolist(), k
    # the order really is (score, id): within every tied value the ids ascend
    got = R.top_lowest(score, ids_arg, 3000)
    key = [(score[i] + 0.0, ids[i]) for i in got]
    assert key == sorted(key)


def test_top_lowest_continuous_duplicate_ids_and_nan(paths):
    rng = np.random.default_rng(4)
    n = 5000
    score = rng.normal(size=n)
    score[rng.integers(0, n, 300)] = score[rng.integers(0, n, 300)]   # some exact ties
    ids = np.asarray([f"d{v}" for v in rng.integers(0, 800, n)], dtype=object)  # duplicates
    for k in (1, 1500, 4999):
        assert R.top_lowest(score, pa.array(ids.tolist()), k).tolist() == \
            R.top_lowest_reference(score, ids, k).tolist()
        assert R.top_lowest(-score, ids, k).tolist() == \
            R.top_lowest_reference(-score, ids, k).tolist()
    ints = rng.integers(0, 30, n)              # non-string ids compare as strings, as before
    assert R.top_lowest(np.round(score), pa.array(ints), 2000).tolist() == \
        R.top_lowest_reference(np.round(score), ints, 2000).tolist()
    score[10] = np.nan
    assert R.top_lowest(score, ids, 100).tolist() == R.top_lowest_reference(score, ids, 100).tolist()


def test_select_pd_ties_by_id_exact(paths):
    """Gaps on an integer grid and q_k = 1 (γ = 0.6): Δr̃ ∈ {−1, 0, 1}, so PD takes seven
    values and the ids alone decide who of the boundary value is selected."""
    t = _table(6000, seed=5, decimals=0)
    for strategy in ("pd", "high"):
        res = select(t, strategy, length=NO_LENGTH, budget=0.3, gamma=0.6)
        pd, q = _reference_pd(t, 0.6, 0.0, "penalty")
        sign = 1.0 if strategy == "pd" else -1.0
        want = R.top_lowest_reference(sign * pd, np.asarray(t["id"].to_pylist(), object), 1800)
        assert res.selected_ids == _ids_of(t, want)
        assert set(q.values()) == {1.0} and len(np.unique(pd)) <= 7 and (pd == pd[want[-1]]).sum() > 100   # ties decide


def test_aspect_codes_threads_and_dictionary(paths):
    t = _table(3000, seed=6, aspects=("x", "hello", "a", "zz"))
    codes, names = aspect_codes(t)
    assert [names[c] for c in codes] == t["aspect"].to_pylist()
    d = t.set_column(1, "aspect", t["aspect"].dictionary_encode())
    codes, names = aspect_codes(d)
    assert [names[c] for c in codes] == t["aspect"].to_pylist()
    assert sorted(names) == ["a", "hello", "x", "zz"]


def test_contract_errors_win_before_the_arithmetic(paths):
    t = _table(3000, seed=7)
    bad = t.set_column(t.column_names.index("gap_b"), "gap_b",
                       pa.array(np.where(np.arange(3000) == 2000, np.nan, t["gap_b"].to_numpy())))
    with pytest.raises(DataError, match="non-finite"):
        compute_pd(bad, length=NO_LENGTH, gamma=0.95)
    nulls = t.set_column(1, "aspect", pa.array([None] + t["aspect"].to_pylist()[1:]))
    with pytest.raises(DataError, match="null aspect"):
        compute_pd(nulls, length=NO_LENGTH, gamma=0.95)
    missing = t.drop_columns(["gap_c"])
    with pytest.raises(DataError, match="no gap_c column"):
        compute_pd(missing, length=NO_LENGTH, gamma=0.95)
    with pytest.raises(DataError, match="aspect_weights name unknown"):
        compute_pd(t, length=NO_LENGTH, gamma=0.95, aspect_weights={"q": 1.0})
    zero = t.set_column(t.column_names.index("gap_a"), "gap_a", pa.array(np.zeros(3000)))
    with pytest.raises(PdrayError, match="aspect 'a': q_k = 0.0"):
        compute_pd(zero, length=NO_LENGTH, gamma=0.95)
