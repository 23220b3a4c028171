"""Hand-computed LossDiff / IRM (METHOD.md "Second seed", steps 2-3) and the band (step 4)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from pdray.length_modes import NO_LENGTH
from pdray.lossdiff import math as LM
from pdray.lossdiff.hybrid import compare
from pdray.lossdiff.logprob_scores import lossdiff_irm_selection
from pdray.selection import band as B
from pdray.selection import math as M
from pdray.selection import ranking as R

BETA = 0.1
# pair A: policy margin (−10+12) − (−14+12) = 4, aux margin (−11+12) − (−13+12) = 2
# pair B: policy margin (−20+19) − (−18+19) = −2, aux margin 0
BATCH = dict(policy_c=[-10.0, -20.0], policy_r=[-14.0, -18.0], aux_c=[-11.0, -19.0],
             aux_r=[-13.0, -19.0], ref_c=[-12.0, -19.0], ref_r=[-12.0, -19.0])


def test_dpo_loss_hand_values():
    # −log σ(0.4) = ln(1 + e^−0.4) = ln(1.670320046) = 0.5130152524
    got = LM.dpo_loss_per_pair(BATCH["policy_c"], BATCH["policy_r"], BATCH["ref_c"],
                               BATCH["ref_r"], BETA)
    assert got[0] == pytest.approx(0.5130152524, abs=1e-9)
    # −log σ(−0.2) = ln(1 + e^0.2) = ln(2.221402758) = 0.7981388693
    assert got[1] == pytest.approx(0.7981388693, abs=1e-9)
    # zero margin: ln 2; huge margins stay finite (stable softplus)
    assert LM.dpo_loss_per_pair(-5, -5, -5, -5, 1.0) == pytest.approx(math.log(2))
    assert LM.dpo_loss_per_pair(0, 1e6, 0, 0, 1.0) == pytest.approx(1e6)
    assert LM.dpo_loss_per_pair(1e6, 0, 0, 0, 1.0) == pytest.approx(0.0)


def test_lossdiff_and_irm_hand_values():
    ld = LM.lossdiff(BATCH["policy_c"], BATCH["policy_r"], BATCH["aux_c"], BATCH["aux_r"],
                     BATCH["ref_c"], BATCH["ref_r"], BETA)
    # A: 0.5130152524 − ln(1 + e^−0.2) = 0.5130152524 − 0.5981388693
    # B: 0.7981388693 − ln 2          = 0.7981388693 − 0.6931471806
    np.testing.assert_allclose(ld, [-0.0851236169, 0.1049916887], atol=1e-9)
    ir = LM.irm(BATCH["policy_c"], BATCH["policy_r"], BATCH["ref_c"], BATCH["ref_r"], BETA)
    np.testing.assert_allclose(ir, [0.4, -0.2], atol=1e-12)


IDS = ["a", "b", "c", "d", "e", "f"]
LD = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]     # P20 = 1, P80 = 4 -> b c d e
IRM = [2.0, 10.0, 3.0, 4.0, 0.0, 5.0]   # sorted 0 2 3 4 5 10: P20 = 2, P80 = 5 -> a c d f
PD = [-1.0, -0.5, 0.2, -0.9, 0.5, 0.0]


def _scores():
    return pa.table({"id": IDS, "aspect": ["h"] * 6, "lossdiff": LD, "irm": IRM})


def test_band_mask_and_intersection_hand_made():
    assert B.percentile_bounds(LD, 0.2, 0.8) == (1.0, 4.0)
    assert B.percentile_bounds(IRM, 0.2, 0.8) == (2.0, 5.0)
    assert np.asarray(IDS)[B.percentile_band(LD, 0.2, 0.8)].tolist() == ["b", "c", "d", "e"]
    assert np.asarray(IDS)[B.percentile_band(IRM, 0.2, 0.8)].tolist() == ["a", "c", "d", "f"]
    assert np.asarray(IDS)[B.band_intersection([LD, IRM], 0.2, 0.8)].tolist() == ["c", "d"]
    sel = lossdiff_irm_selection(_scores(), 0.2, 0.8)
    assert sel.selected_ids == ["c", "d"]
    assert sel.keep_rate == pytest.approx(2 / 6)
    assert sel.bounds == {"lossdiff": [1.0, 4.0], "irm": [2.0, 5.0]}
    # the full band keeps all; a narrower band keeps fewer
    assert lossdiff_irm_selection(_scores(), 0.0, 1.0).keep_rate == 1.0
    with pytest.raises(ValueError):
        B.percentile_band(LD, 0.8, 0.2)


def test_band_matches_selection_core():
    from pdray.selection import select

    res = select(_scores(), "lossdiff_irm", length=NO_LENGTH, low=0.2, high=0.8)
    assert sorted(res.selected_ids) == ["c", "d"]


def test_non_finite_score_is_named():
    from pdray.errors import DataError

    t = _scores().set_column(3, "irm", pa.array([2.0, float("nan"), 3, 4, 0, 5]))
    with pytest.raises(DataError, match="row 1, field 'irm'"):
        lossdiff_irm_selection(t)


def test_hybrids_hand_made():
    # PD top-λ (λ = 0.5 -> 3 rows): a (−1), d (−0.9), b (−0.5); ∩ IRM band {a c d f} = {a d}
    ids = np.asarray(IDS, dtype=object)
    k = M.budget_count(len(IDS), 0.5)
    assert sorted(ids[R.top_lowest(np.asarray(PD), ids, k)].tolist()) == ["a", "b", "d"]
    assert ids[B.pd_irm_intersect(PD, IRM, ids, k, 0.2, 0.8)].tolist() == ["a", "d"]
    # ranks: PD a0 d1 b2 f3 c4 e5; |IRM − 3.5| = 1.5 6.5 .5 .5 3.5 1.5 -> c0 d1 a2 f3 e4 b5
    # sums a2 b7 c4 d2 e9 f6 -> keep a, d (2, tie by id), c (4)
    keep, s = B.pd_irm_rank_sum(PD, IRM, ids, k)
    assert s.tolist() == [2, 7, 4, 2, 9, 6]
    assert [IDS[i] for i in keep] == ["a", "d", "c"]


def test_compare_reports_keep_rate_cp_overlap():
    # ground truth: a, c, d agree with the holistic preference; b, e, f conflict
    rows = []
    for i, agree in zip(IDS, [1, 0, 1, 1, 0, 0]):
        rows.append({"id": i, "aspect": "h", "prompt": "p", "chosen": "x", "rejected": "y",
                     "chosen_ratings": {"h": 1.0, "s": 1.0 if agree else 0.0},
                     "rejected_ratings": {"h": 0.0, "s": 0.0 if agree else 1.0 + 1.0}})
    from pdray.schema import pairs_from_rows

    pairs = pairs_from_rows(rows)
    pd_table = pa.table({"id": IDS[::-1], "pd": PD[::-1]})  # matched on id, not order
    cmp = compare(_scores(), pd_table, pairs, budget=0.5)
    s = cmp["strategies"]
    assert s["lossdiff_irm"] == {"kept": 2, "keep_rate": pytest.approx(1 / 3), "cp": 1.0,
                                 "conflict": 0.0}
    assert s["pd"]["kept"] == 3 and s["pd"]["cp"] == pytest.approx(2 / 3)  # a b d
    assert s["pd_irm"]["kept"] == 2 and s["pd_irm"]["cp"] == 1.0           # a d
    assert s["irm_band"]["cp"] == pytest.approx(3 / 4)                    # a c d f
    assert cmp["all"]["cp"] == pytest.approx(0.5)
    assert cmp["overlap"]["lossdiff_irm|pd_irm"] == pytest.approx(1 / 3)  # {c d} vs {a d}
