import numpy as np
import pyarrow as pa
import pytest

from pdray.errors import ConfigError, DataError
from pdray.length_modes import NO_LENGTH
from pdray.selection import SELECTORS, SelectionResult, select, write_selection
from pdray.selection.scores import validate_scores

from .helpers import agreement as holistic_agreement
from .helpers import hand_scores
from .helpers import pku_scores as _pku_scores


def test_pd_high_mid_random(scores):
    assert select(scores, "pd", length=NO_LENGTH, budget=0.5, gamma=1.0).selected_ids == ["z2", "z1"]
    assert select(scores, "high", length=NO_LENGTH, budget=0.5, gamma=1.0).selected_ids == ["z3", "z1"]
    # sorted by (PD, id): z2, z1, z4, z3 → the middle two
    assert select(scores, "mid", length=NO_LENGTH, budget=0.5, gamma=1.0).selected_ids == ["z1", "z4"]
    r1 = select(scores, "random", length=NO_LENGTH, budget=0.5, seed=7).selected_ids
    assert len(r1) == 2 and r1 == select(scores, "random", length=NO_LENGTH, budget=0.5, seed=7).selected_ids
    # the draws follow the ids, not the rows (this was an ``or True`` assertion once, #14)
    assert r1 == select(scores.take([3, 2, 1, 0]), "random", length=NO_LENGTH, budget=0.5, seed=7).selected_ids


def test_random_is_seeded_uniform_and_order_invariant():
    n = 2000
    t = pa.table({"id": [f"r{i:05d}" for i in range(n)], "aspect": ["a", "b"] * (n // 2),
                  "chosen_len": np.ones(n, int), "rejected_len": np.ones(n, int),
                  "gap_a": np.ones(n), "gap_b": np.ones(n)})
    a = select(t, "random", length=NO_LENGTH, budget=0.3, seed=3).selected_ids
    shuffled = t.take(np.random.default_rng(0).permutation(n))
    assert select(shuffled, "random", length=NO_LENGTH, budget=0.3, seed=3).selected_ids == a   # row order irrelevant
    b = select(t, "random", length=NO_LENGTH, budget=0.3, seed=4).selected_ids
    assert len(a) == 600 and len(set(a)) == 600 and a != b
    # uniform: each half of the id range holds about half of the sample (binomial sd ≈ 12)
    first_half = sum(int(i[1:]) < n // 2 for i in a)
    assert abs(first_half - 300) < 60


def test_manifest_counts_and_q(scores, tmp_path):
    res = select(scores, "pd", length=NO_LENGTH, budget=0.75, gamma=1.0)
    m = res.manifest
    assert m["counts"] == {"in": 4, "selected": 3, "not_selected": 1, "dropped": 0}
    assert m["q"] == pytest.approx({"A": 3.0, "B": 4.0, "C": 2.0})
    assert res.table.column_names == ["id", "pd"]
    assert res.table["pd"].to_pylist() == pytest.approx([-7 / 12, 0.0, 0.0])
    back = SelectionResult.load(write_selection(res, tmp_path / "sel"))
    assert back.selected_ids == res.selected_ids and back.manifest["strategy"] == "pd"


def test_holistic_and_band_and_lossdiff(scores):
    s = scores.append_column("gap_holistic", pa.array([0.1, 0.9, -0.5, 0.3]))
    assert select(s, "holistic", length=NO_LENGTH, budget=0.5).selected_ids == ["z2", "z4"]
    with pytest.raises(DataError, match="gap_holistic"):
        select(scores, "holistic", length=NO_LENGTH)
    s = scores.append_column("lossdiff", pa.array([0.0, 1.0, 2.0, 3.0]))
    s = s.append_column("irm", pa.array([3.0, 2.0, 1.0, 0.0]))
    # P25..P75 of 0..3 = [0.75, 2.25]: rows 1, 2 in both bands
    r = select(s, "lossdiff_irm", length=NO_LENGTH, low=0.25, high=0.75)
    assert r.selected_ids == ["z2", "z3"] and r.manifest["info"]["keep_rate"] == 0.5
    assert select(s, "band", length=NO_LENGTH, columns=["lossdiff"], low=0.0, high=0.5).selected_ids == ["z1", "z2"]
    # hybrid: PD top-50% = {z2, z1} ∩ IRM band {z2, z3} = {z2}
    assert select(s, "pd_irm", length=NO_LENGTH, budget=0.5, gamma=1.0, low=0.25, high=0.75).selected_ids == ["z2"]
    assert len(select(s, "pd_irm", length=NO_LENGTH, budget=0.5, gamma=1.0, combine="rank_sum").selected_ids) == 2


def test_unknown_strategy_and_option(scores):
    with pytest.raises(ConfigError, match="unknown strategy 'best'"):
        select(scores, "best", length=NO_LENGTH)
    with pytest.raises(ConfigError, match="takes no option"):
        select(scores, "pd", length=NO_LENGTH, colour="red")
    assert {"pd", "random", "high", "mid", "holistic", "no_debias", "true_pd", "band",
            "lossdiff_irm", "pd_irm", "oracle", "overall", "all"} <= set(SELECTORS)


@pytest.mark.parametrize("mutate,match", [
    (lambda t: t.drop_columns(["chosen_len"]), "field 'chosen_len': required scores column"),
    (lambda t: t.drop_columns(["gap_C"]), "row 2, field 'aspect': unknown aspect 'C'"),
    (lambda t: t.set_column(5, "gap_B", pa.array([1.0, np.nan, 1.0, 1.0])),
     "row 1, field 'gap_B': non-finite value"),
    (lambda t: t.set_column(6, "gap_C", pa.array([1.0, 1.0, np.inf, 1.0])),
     "row 2, field 'gap_C': non-finite value inf"),
    (lambda t: t.set_column(3, "rejected_len", pa.array([5, 5, 5, -1])),
     "row 3, field 'rejected_len': negative token length -1"),
    (lambda t: t.set_column(1, "aspect", pa.array(["A", None, "C", "A"])),
     "row 1, field 'aspect': null aspect"),
    (lambda t: t.set_column(0, "id", pa.array(["z1", "z2", None, "z4"])),
     "row 2, field 'id': null id"),
    (lambda t: t.set_column(6, "gap_C", pa.array(["a", "b", "c", "d"])),
     "field 'gap_C': expected numbers, got string"),
    (lambda t: t.set_column(5, "gap_B", pa.array([1.0, np.inf, -np.inf, 1.0])),
     r"row 1, field 'gap_B': non-finite value inf \(2 such rows\)"),      # the sum is NaN
    (lambda t: t.set_column(6, "gap_C", pa.array([1.0, None, 2.0, 1.0])),
     "row 1, field 'gap_C': non-finite value None"),
    (lambda t: t.set_column(2, "chosen_len", pa.array([5, 5, None, 5])),
     "row 2, field 'chosen_len': non-finite value None"),
])
def test_scores_contract_errors(mutate, match):
    with pytest.raises(DataError, match="^scores.parquet: " + match):
        validate_scores(mutate(hand_scores()), "scores.parquet")


def test_scores_contract_passes_huge_finite_gaps():
    """A sum that overflows to inf is no proof of a bad value: the exact check decides."""
    t = hand_scores().set_column(5, "gap_B", pa.array([1.7e308, 1.7e308, -1.0, 1.0]))
    assert validate_scores(t, "scores.parquet") == ["A", "B", "C"]
    assert validate_scores(t, own=["C", "A", "B"]) == ["A", "B", "C"]


def test_true_pd_on_real_pku_beats_random_and_high_is_worse(pku_pairs):
    scores = _pku_scores(pku_pairs, noise=0.0)
    cp = {}
    for strat in ("true_pd", "random", "high"):
        r = select(scores, strat, length=NO_LENGTH, budget=0.3, gamma=0.95, pairs=pku_pairs, seed=0)
        agree = holistic_agreement(r.table)
        cp[strat] = float(np.mean(agree > 0))
    assert cp["true_pd"] > cp["random"] > cp["high"]
    # the 234 pairs whose two labels disagree have PD = +1: high takes them all, then 66 more
    assert cp["true_pd"] == 1.0 and cp["high"] == pytest.approx(66 / 300)


def test_oracle_relabels_and_drops_ties(pku_pairs):
    scores = _pku_scores(pku_pairs, noise=0.0)
    r = select(scores, "oracle", length=NO_LENGTH, pairs=pku_pairs)
    # binary ratings on two aspects: the 234 disagreeing pairs tie on the mean and are dropped
    assert r.manifest["counts"] == {"in": 1000, "selected": 766, "not_selected": 0, "dropped": 234}
    assert r.manifest["info"]["dropped_ties"] == 234 and r.manifest["info"]["relabelled"] == 0
    assert np.all(holistic_agreement(r.table) > 0)
    assert set(r.table.column_names) >= {"id", "aspect", "prompt", "chosen", "rejected"}


def test_with_pairs_gives_full_canonical_rows(pku_pairs):
    scores = _pku_scores(pku_pairs, noise=0.3)
    r = select(scores, "pd", length=NO_LENGTH, budget=0.3, pairs=pku_pairs)
    assert r.table.num_rows == 300 and "pd" in r.table.column_names
    assert r.table.column_names[:5] == ["id", "aspect", "prompt", "chosen", "rejected"]
    assert r.manifest["counts"]["in"] == 1000 and r.manifest["counts"]["not_selected"] == 700


def test_band_for_keep_rate_hand_computed():
    from pdray.selection.band import band_for_keep_rate, band_intersection

    # identical scores: the band [p, 1-p] keeps the rows within the middle, so a 60 % keep
    # rate on 10 distinct values needs p at most 0.2 (rows 2..7 of 0..9 at p=2/9)
    v = np.arange(10.0)
    low, high = band_for_keep_rate([v, v], 0.6)
    assert high == pytest.approx(1 - low)
    assert band_intersection([v, v], low, high).sum() == 6
    assert band_intersection([v, v], low + 1e-3, high - 1e-3).sum() < 6  # the narrowest
    # opposite orders: the two bands overlap less, so the band must be wider
    low2, _ = band_for_keep_rate([v, v[::-1].copy()], 0.6)
    assert low2 <= low
    assert band_for_keep_rate([v, v], 1.0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="keep_rate"):
        band_for_keep_rate([v], 0.0)


def test_lossdiff_irm_default_keeps_the_papers_rate():
    rng = np.random.default_rng(0)
    n = 200
    ld = rng.normal(size=n)
    s = pa.table({"id": [f"z{i:03d}" for i in range(n)], "lossdiff": ld,
                  "irm": 0.5 * ld + rng.normal(size=n)})
    r = select(s, "lossdiff_irm", length=NO_LENGTH)
    assert 0.57 <= len(r.selected_ids) / n < 0.60
    assert r.manifest["info"]["keep_rate_target"] == 0.57
    fixed = select(s, "lossdiff_irm", length=NO_LENGTH, low=0.2, high=0.8)
    assert fixed.manifest["info"]["band"] == [0.2, 0.8]
    assert fixed.manifest["info"]["keep_rate_target"] is None
    with pytest.raises(ConfigError, match="both low and high"):
        select(s, "lossdiff_irm", length=NO_LENGTH, low=0.2)
