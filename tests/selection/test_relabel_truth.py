"""oracle / overall relabelling, true_pd, no_debias and all on a three-pair example by hand.

Ratings (chosen vs rejected):                 mean-of-aspects       overall
  p1 (aspect A): {A:5, B:1} vs {A:3, B:4}     3.0 < 3.5 → swap      2 < 4 → swap
  p2 (aspect B): {A:4, B:5} vs {A:2, B:1}     4.5 > 1.5 → keep      5 = 5 → tie, dropped
  p3 (aspect A): {A:4, B:2} vs {A:2, B:4}     3.0 = 3.0 → dropped   4 > 1 → keep
True gaps: A = (2, 2, 2), B = (−3, 4, −2). γ = 1: q_A = |2| (only p2 ∉ D_A) = 2,
q_B = max(3, 2) = 3. PD(p1) = −(−3/3) = 1, PD(p2) = −(2/2) = −1, PD(p3) = −(−2/3) = 2/3.
"""

import pyarrow as pa
import pytest

from pdray.errors import ConfigError, DataError
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.schema import PAIR_SCHEMA
from pdray.selection import select

from .helpers import hand_scores


def _pairs() -> pa.Table:
    r = lambda a, b: [("A", float(a)), ("B", float(b))]
    cols = {"id": ["p1", "p2", "p3"], "aspect": ["A", "B", "A"], "prompt": ["x1", "x2", "x3"],
            "chosen": ["w1", "w2", "w3"], "rejected": ["l1", "l2", "l3"],
            "chosen_ratings": [r(5, 1), r(4, 5), r(4, 2)],
            "rejected_ratings": [r(3, 4), r(2, 1), r(2, 4)],
            "chosen_overall": [2.0, 5.0, 4.0], "rejected_overall": [4.0, 5.0, 1.0]}
    return pa.table({k: pa.array(v, PAIR_SCHEMA.field(k).type) for k, v in cols.items()})


def _scores() -> pa.Table:
    return pa.table({"id": ["p3", "p1", "p2"], "aspect": ["A", "A", "B"],  # other row order
                     "chosen_len": [1, 1, 1], "rejected_len": [1, 1, 1],
                     "gap_A": [0.5, 1.0, 2.0], "gap_B": [1.0, -1.0, 3.0]})


def test_oracle_swaps_and_drops_ties():
    r = select(_scores(), "oracle", length=NO_LENGTH, pairs=_pairs())
    assert sorted(r.selected_ids) == ["p1", "p2"]
    t = {row["id"]: row for row in r.table.to_pylist()}
    assert (t["p1"]["chosen"], t["p1"]["rejected"], t["p1"]["relabelled"]) == ("l1", "w1", True)
    assert (t["p2"]["chosen"], t["p2"]["relabelled"]) == ("w2", False)
    assert dict(t["p1"]["chosen_ratings"]) == {"A": 3.0, "B": 4.0}       # ratings swapped too
    assert r.manifest["counts"] == {"in": 3, "selected": 2, "not_selected": 0, "dropped": 1}
    assert r.manifest["info"]["relabelled"] == 1 and r.manifest["info"]["dropped_ties"] == 1


def test_overall_relabels_by_overall():
    r = select(_scores(), "overall", length=NO_LENGTH, pairs=_pairs())
    assert sorted(r.selected_ids) == ["p1", "p3"]
    t = {row["id"]: row for row in r.table.to_pylist()}
    assert t["p1"]["chosen"] == "l1" and t["p1"]["chosen_overall"] == 4.0
    assert r.manifest["counts"]["dropped"] == 1 and r.manifest["counts"]["selected"] == 2


def test_relabel_needs_pairs_with_every_id():
    with pytest.raises(ConfigError, match="needs the pairs"):
        select(_scores(), "oracle", length=NO_LENGTH)
    with pytest.raises(DataError, match=r"scores.parquet: row 0, field 'id': id 'p3' is not in "
                                        r"the pairs pairs.jsonl \(1 of 3 scored ids"):
        select(_scores(), "oracle", length=NO_LENGTH, pairs=_pairs().slice(0, 2),
               source="scores.parquet", pairs_source="pairs.jsonl")


def test_duplicate_scored_ids_are_an_error_naming_file_and_row():
    s = _scores()
    dup = pa.concat_tables([s, s.slice(1, 1)])
    with pytest.raises(DataError, match=r"s.parquet: row 3, field 'id': duplicate id 'p1' "
                                        r"\(first at row 1\)"):
        select(dup, "pd", length=NO_LENGTH, source="s.parquet")


def test_duplicate_check_is_exact_when_hashes_collide(monkeypatch):
    from pdray.selection import api

    assert api.distinct_ids(pa.array(["p1", "p2", "p3"]))
    assert not api.distinct_ids(pa.chunked_array([["p1", "p2"], ["p1"]]))
    monkeypatch.setattr(api, "distinct_ids", lambda ids: False)   # as if every hash collided
    assert select(_scores(), "all", length=NO_LENGTH).selected_ids == ["p1", "p2", "p3"]   # distinct: no error
    s = _scores()
    with pytest.raises(DataError, match=r"row 3, field 'id': duplicate id 'p1' \(first at row 1"):
        select(pa.concat_tables([s, s.slice(1, 1)]), "pd", length=NO_LENGTH)


def test_true_pd_by_hand():
    r = select(_scores(), "true_pd", length=NO_LENGTH, budget=1 / 3, gamma=1.0, pairs=_pairs())
    assert r.selected_ids == ["p2"]
    assert r.manifest["q"] == pytest.approx({"A": 2.0, "B": 3.0})
    full = select(_scores(), "true_pd", length=NO_LENGTH, budget=1.0, gamma=1.0, pairs=_pairs())
    assert full.selected_ids == ["p2", "p3", "p1"]
    assert full.table["true_pd"].to_pylist() == pytest.approx([-1.0, 2 / 3, 1.0])


def test_no_debias_ignores_rho_and_all_keeps_everything():
    s = hand_scores(dlen2=10)
    nd = select(s, "no_debias", length=LengthTerm.of("penalty", 0.1), budget=0.5, gamma=1.0)
    plain = select(s, "pd", length=LengthTerm.of("penalty", 0.0), budget=0.5, gamma=1.0)
    penal = select(s, "pd", length=LengthTerm.of("penalty", 0.1), budget=0.5, gamma=1.0)
    assert nd.table["pd"].to_pylist() == plain.table["pd"].to_pylist()
    assert nd.table["pd"].to_pylist() != penal.table["pd"].to_pylist()
    a = select(s, "all", length=NO_LENGTH)
    assert a.selected_ids == ["z1", "z2", "z3", "z4"]
    assert a.manifest["counts"] == {"in": 4, "selected": 4, "not_selected": 0, "dropped": 0}
