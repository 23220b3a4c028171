"""The select stage joins the LossDiff / IRM columns onto the gap scores by id; a pair without
log-prob scores is a one-line error naming the file, row and field, never a silent drop."""

import pyarrow as pa
import pytest

from pdray.errors import DataError
from pdray.selection.scores import join_logprob_scores

GAPS = pa.table({"id": ["a", "b", "c"], "aspect": ["h", "s", "h"], "gap_h": [1.0, 2.0, 3.0],
                 "irm": [9.0, 9.0, 9.0]})


def test_join_by_id_whatever_the_order():
    lp = pa.table({"id": ["c", "a", "b"], "lossdiff": [0.3, 0.1, 0.2], "irm": [3.0, 1.0, 2.0]})
    out = join_logprob_scores(GAPS, lp, "ld/shards")
    assert out["id"].to_pylist() == ["a", "b", "c"]
    assert out["lossdiff"].to_pylist() == [0.1, 0.2, 0.3]
    assert out["irm"].to_pylist() == [1.0, 2.0, 3.0]  # the stale column is replaced
    assert out.num_rows == GAPS.num_rows


def test_missing_pair_names_file_row_and_field():
    lp = pa.table({"id": ["a", "c"], "lossdiff": [0.1, 0.3], "irm": [1.0, 3.0]})
    with pytest.raises(DataError, match=r"'b'.*1 of 3 pairs") as e:
        join_logprob_scores(GAPS, lp, "ld/shards")
    msg = str(e.value)
    assert "ld/shards" in msg and "row 1" in msg and "'id'" in msg


def test_not_a_logprob_table():
    with pytest.raises(DataError, match="not a log-prob scores table"):
        join_logprob_scores(GAPS, pa.table({"id": ["a"], "irm": [1.0]}), "x.parquet")
