"""Eq. 10, 13–15 and 18 on a four-pair example worked out by hand (see conftest.hand_scores).

γ = 1 (the max): q_A = max(|1|, |−3|) = 3 (rows z2, z3 ∉ D_A); q_B = max(|2|, |1|, |−4|) = 4;
q_C = max(|−1|, |0.5|, |2|) = 2.
PD(z1) = −(2/4 + −1/2) = 0; PD(z2) = −(1/3 + 0.5/2) = −7/12; PD(z3) = −(−3/3 + 1/4) = 0.75;
PD(z4) = −(−4/4 + 2/2) = 0.
"""

import numpy as np
import pytest

from pdray.errors import PdrayError
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.selection import band as B
from pdray.selection import compute_pd
from pdray.selection import math as M
from pdray.selection import ranking as R

from .helpers import hand_scores


def test_eq13_to_15_gamma_one(scores):
    r = compute_pd(scores, length=NO_LENGTH, gamma=1.0)
    assert r.q == pytest.approx({"A": 3.0, "B": 4.0, "C": 2.0})
    assert r.pd == pytest.approx([0.0, -7 / 12, 0.75, 0.0])
    # own-aspect gaps do not enter PD: changing them changes nothing
    s2 = scores.set_column(4, "gap_A", __import__("pyarrow").array([-100.0, 1.0, -3.0, 100.0]))
    assert compute_pd(s2, length=NO_LENGTH, gamma=1.0).pd == pytest.approx(r.pd)


def test_eq14_clipping_gamma_half(scores):
    # γ = 0.5: q_A = median(1, 3) = 2, q_B = median(2, 1, 4) = 2, q_C = median(1, 0.5, 2) = 1
    r = compute_pd(scores, length=NO_LENGTH, gamma=0.5)
    assert r.q == pytest.approx({"A": 2.0, "B": 2.0, "C": 1.0})
    assert r.normalized["B"][3] == -1.0 and r.normalized["C"][3] == 1.0   # −4/2, 2/1 clipped
    assert r.normalized["A"][2] == -1.0                                   # −3/2 clipped
    assert r.pd == pytest.approx([0.0, -1.0, 0.5, 0.0])


def test_eq18_length_term():
    # z2 has Δlen = +10; ρ = 0.1 takes 1 off both of its cross gaps:
    # gap_A(z2) = 0, gap_C(z2) = −0.5 → q_A = 3, q_C = max(1, 0.5, 2) = 2
    r = compute_pd(hand_scores(dlen2=10), length=LengthTerm.of("penalty", 0.1), gamma=1.0)
    assert r.q == pytest.approx({"A": 3.0, "B": 4.0, "C": 2.0})
    assert r.pd[1] == pytest.approx(-(0 / 3 + -0.5 / 2))
    # product-of-experts and none leave the gaps alone
    assert compute_pd(hand_scores(dlen2=10), length=LengthTerm.of("poe", 0.1), gamma=1.0).pd == pytest.approx([0.0, -7 / 12, 0.75, 0.0])


def test_eq10_top_lowest_ties_by_id():
    pd = np.array([0.0, -7 / 12, 0.75, 0.0])
    ids = np.array(["z4", "z2", "z3", "z1"], dtype=object)   # z4 and z1 tie at 0
    assert R.top_lowest(pd, ids, 2).tolist() == [1, 3]           # z2, then z1 before z4
    assert M.budget_count(4, 0.5) == 2 and M.budget_count(10, 0.25) == 3
    with pytest.raises(ValueError):
        M.budget_count(4, 0.0)


def test_weights_and_range(scores):
    r = compute_pd(scores, length=NO_LENGTH, gamma=1.0, aspect_weights={"B": 2.0})
    assert r.pd[0] == pytest.approx(-(2 * 0.5 - 0.5))
    big = compute_pd(scores, length=NO_LENGTH, gamma=0.05)
    assert np.all(np.abs(big.pd) <= 2.0)  # κ − 1 = 2


def test_q_zero_fails_loudly(scores):
    import pyarrow as pa

    s = scores.set_column(5, "gap_B", pa.array([0.0, 9.0, 0.0, 0.0]))
    with pytest.raises(PdrayError, match="aspect 'B': q_k = 0.0"):
        compute_pd(s, length=NO_LENGTH, gamma=0.95)


def test_percentile_band():
    v = np.arange(10, dtype=float)  # P20 = 1.8, P80 = 7.2
    assert np.flatnonzero(B.percentile_band(v, 0.2, 0.8)).tolist() == [2, 3, 4, 5, 6, 7]


def test_unknown_weight_and_single_aspect_fail(scores):
    import pyarrow as pa

    from pdray.errors import DataError

    with pytest.raises(DataError, match=r"aspect_weights name unknown aspects \['Z'\]"):
        compute_pd(scores, length=NO_LENGTH, gamma=0.95, aspect_weights={"Z": 1.0})
    one = scores.set_column(1, "aspect", pa.array(["A"] * 4))
    with pytest.raises(DataError, match="PD needs pairs of at least two aspects"):
        compute_pd(one, length=NO_LENGTH, gamma=0.95)


def test_holistic_column_is_not_part_of_pd(scores):
    import pyarrow as pa

    with_h = scores.append_column("gap_holistic", pa.array([100.0, -100.0, 5.0, 0.0]))
    r = compute_pd(with_h, length=NO_LENGTH, gamma=1.0)
    assert set(r.q) == {"A", "B", "C"} and r.pd == pytest.approx([0.0, -7 / 12, 0.75, 0.0])
