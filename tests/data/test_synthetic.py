import numpy as np
import pytest

from pdray.data import conflict_flags, generate_synthetic, synthetic_pairs, write_synthetic
from pdray.data.loaders import read_pairs
from pdray.data.synthetic import DEFAULT_ASPECTS, MARKERS
from pdray.schema import ratings_dict, validate_pairs


def _words(col):
    return [s.rstrip(".").split() for s in col.to_pylist()]


def test_schema_ground_truth_and_exact_conflict():
    t = synthetic_pairs(1000, conflict_rate=0.3, seed=2)
    validate_pairs(t, min_aspects=4)
    assert t.num_rows == 1000 and len(set(t["id"].to_pylist())) == 1000
    assert np.mean(conflict_flags(t) < 0) == pytest.approx(0.3)
    for r in t.slice(0, 50).to_pylist():
        c, w = ratings_dict(r["chosen_ratings"]), ratings_dict(r["rejected_ratings"])
        assert set(c) == set(DEFAULT_ASPECTS) and all(1 <= v <= 5 for v in c.values())
        assert c[r["aspect"]] > w[r["aspect"]]  # chosen wins under its own aspect
        assert r["chosen_overall"] == pytest.approx(np.mean(list(c.values())))


def test_marker_words_carry_each_aspect():
    t = synthetic_pairs(3000, seed=3)
    cw, rw = _words(t["chosen"]), _words(t["rejected"])
    for a in DEFAULT_ASPECTS:
        m = MARKERS[a]
        gap_words = np.array([c.count(m) - r.count(m) for c, r in zip(cw, rw)])
        gap_rating = np.array([ratings_dict(c)[a] - ratings_dict(r)[a] for c, r in
                               zip(t["chosen_ratings"].to_pylist(),
                                   t["rejected_ratings"].to_pylist())])
        assert np.corrcoef(gap_words, gap_rating)[0, 1] > 0.8
    own = [c.count(MARKERS[a]) >= r.count(MARKERS[a])
           for c, r, a in zip(cw, rw, t["aspect"].to_pylist())]
    assert np.mean(own) > 0.9


def test_length_effect_controls_length_bias():
    def gap(le):
        t = synthetic_pairs(4000, length_effect=le, seed=5)
        return np.mean([len(c) - len(r) for c, r in zip(_words(t["chosen"]), _words(t["rejected"]))])

    g0, g1, g2 = gap(0.0), gap(1.0), gap(2.0)
    assert abs(g0) < 0.3 and 2.0 < g1 < 3.5 and 4.5 < g2 < 6.0


def test_streaming_batches_seeded_and_complete(tmp_path):
    batches = list(generate_synthetic(2500, ["a", "b", "c"], batch_size=1000, seed=1))
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    assert batches[2]["id"][0].as_py() == "syn-1-000002000"
    again = list(generate_synthetic(2500, ["a", "b", "c"], batch_size=1000, seed=1))
    assert all(x.equals(y) for x, y in zip(batches, again))
    out = write_synthetic(str(tmp_path / "s.parquet"), 200_000, seed=0)
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    assert pq.read_metadata(out).num_rows == 200_000
    ids = pq.read_table(out, columns=["id"])["id"]
    assert pc.count_distinct(ids).as_py() == 200_000
    assert read_pairs(out).num_rows == 200_000


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least two aspects"):
        synthetic_pairs(10, ["only"])
    with pytest.raises(ValueError, match="conflict_rate must be in"):
        synthetic_pairs(10, conflict_rate=1.5)
    assert synthetic_pairs(0).num_rows == 0
