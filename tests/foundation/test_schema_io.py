import gzip
import json

import pyarrow as pa
import pytest

from pdray.data.loaders import read_pairs
from pdray.errors import DataError
from pdray.fingerprint import file_hash, table_hash
from pdray.io import iter_lines, read_table, write_pairs
from pdray.schema import PAIR_SCHEMA, pairs_from_rows, ratings_dict, split_valid, validate_pairs

ROWS = [
    {"id": "a", "aspect": "helpfulness", "prompt": "p1", "chosen": "c1", "rejected": "r1",
     "chosen_ratings": {"helpfulness": 5.0, "honesty": 2.0},
     "rejected_ratings": {"helpfulness": 3.0, "honesty": 4.0},
     "chosen_overall": 4.0, "rejected_overall": 3.5, "source": "test"},
    {"id": "b", "aspect": "honesty", "prompt": "p2", "chosen": "ü ünïcode", "rejected": "r2",
     "chosen_ratings": None, "rejected_ratings": None, "chosen_overall": None,
     "rejected_overall": None, "source": None, "pd": -0.5},
]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_round_trip(tmp_path, suffix):
    t = pairs_from_rows(ROWS)
    path = tmp_path / f"pairs{suffix}"
    write_pairs(t, path)
    back = read_pairs(path)
    assert back.column_names[:10] == PAIR_SCHEMA.names
    assert back["id"].to_pylist() == ["a", "b"]
    assert ratings_dict(back["chosen_ratings"][0].as_py()) == {"helpfulness": 5.0, "honesty": 2.0}
    assert back["chosen"][1].as_py() == "ü ünïcode"
    assert back["pd"].to_pylist() == [None, -0.5]
    assert back.schema.field("chosen_ratings").type == PAIR_SCHEMA.field("chosen_ratings").type


def test_file_uri_and_hashes(tmp_path):
    t = pairs_from_rows(ROWS)
    uri = f"file://{tmp_path}/x.parquet"
    write_pairs(t, uri)
    assert read_pairs(uri).num_rows == 2
    assert file_hash(tmp_path / "x.parquet").startswith("sha256:")
    assert table_hash(t) == table_hash(pa.concat_tables([t.slice(0, 1), t.slice(1)]))


def test_validation_names_file_row_field(tmp_path):
    rows = [dict(ROWS[0]), dict(ROWS[1], chosen="  ")]
    with pytest.raises(DataError, match=r"f\.jsonl: row 1, field 'chosen': empty text"):
        validate_pairs(pairs_from_rows(rows), "f.jsonl")
    rows = [dict(ROWS[0]), dict(ROWS[1], id="a")]
    with pytest.raises(DataError, match=r"row 1, field 'id': duplicate id 'a' \(first at row 0\)$"):
        validate_pairs(pairs_from_rows(rows), "f")
    with pytest.raises(DataError, match=r"^f: row 1, field 'aspect': unknown aspect 'honesty' "
                                        r"\(known: helpfulness\)$"):
        validate_pairs(pairs_from_rows([dict(ROWS[0], chosen_ratings=None, rejected_ratings=None),
                                        ROWS[1]]), "f", known_aspects={"helpfulness"})
    # an aspect outside the known ones as a key of a ratings map is one too
    with pytest.raises(DataError, match=r"^f: row 0, field 'chosen_ratings': unknown aspect "
                                        r"'honesty' \(known: helpfulness\) \(2 more problems\)$"):
        validate_pairs(pairs_from_rows(ROWS), "f", known_aspects={"helpfulness"})
    with pytest.raises(DataError, match="at least 3 are needed"):
        validate_pairs(pairs_from_rows(ROWS), "f", min_aspects=3)
    t = pairs_from_rows(ROWS).drop_columns(["rejected"])
    with pytest.raises(DataError, match="field 'rejected': required column is missing"):
        validate_pairs(t, "f")


def test_quarantine_counts_every_row():
    rows = [dict(ROWS[0]), dict(ROWS[1], prompt=""), dict(ROWS[0], id="c", chosen_overall=float("nan"))]
    good, bad = split_valid(pairs_from_rows(rows), "f")
    assert good.num_rows + bad.num_rows == 3
    assert bad["_row"].to_pylist() == [1, 2]
    assert bad["_field"].to_pylist() == ["prompt", "chosen_overall"]


def test_jsonl_bad_bytes_and_json(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: row 1: not UTF-8"):
        read_table(p)
    p.write_bytes(b'{"id": "a"}\n{oops\n')
    with pytest.raises(DataError, match="row 1: not valid JSON"):
        read_table(p)
    g = tmp_path / "g.jsonl.gz"
    g.write_bytes(gzip.compress(b'{"a": 1}\n\n{"a": 2}\n'))
    assert read_table(g)["a"].to_pylist() == [1, 2]
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "none.parquet")


@pytest.mark.parametrize("gz", [False, True])
def test_iter_lines_matches_splitlines_for_any_block_size(tmp_path, gz):
    """Streamed lines equal ``read_bytes(...).splitlines()`` whatever the block size: line ends
    (\\n, \\r\\n, \\r, and \\r\\n cut between two blocks), a byte-order mark cut between blocks,
    a last line without its end."""
    import random

    rnd = random.Random(0)
    for trial in range(60):
        parts = [b"\xef\xbb\xbf"] if trial % 3 == 0 else []
        for _ in range(rnd.randint(0, 12)):
            parts.append(bytes(rnd.choice(b'ab{}"') for _ in range(rnd.randint(0, 4))))
            parts.append(rnd.choice([b"\n", b"\r\n", b"\r", b"\r\r\n", b"\n\n"]))
        data = b"".join(parts) + (b"tail" if trial % 2 else b"")
        p = tmp_path / ("x.jsonl.gz" if gz else "x.jsonl")
        p.write_bytes(gzip.compress(data) if gz else data)
        want = data.removeprefix(b"\xef\xbb\xbf").splitlines()
        for block in (1, 2, 3, 5, 1 << 20):
            assert list(iter_lines(p, block=block)) == want, (trial, block, data)
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(DataError, match="cut.jsonl.gz: truncated gzip file"):
        list(iter_lines(p, block=64))


def test_table_hash_content_sensitive_and_chunking_independent():
    a = pa.table({"x": [1, 2, 3], "s": ["a", "bb", None], "f": [0.5, 1.5, 2.5]})
    b = pa.concat_tables([a.slice(0, 1), a.slice(1)])
    assert table_hash(a) == table_hash(b)
    assert table_hash(a) != table_hash(a.set_column(1, "s", pa.array(["a", "bc", None])))
    assert table_hash(a) != table_hash(a.slice(0, 2))
    assert table_hash(a.slice(1)) == table_hash(pa.table({"x": [2, 3], "s": ["bb", None],
                                                         "f": [1.5, 2.5]}))


def test_atomic_output_replaces_whole_or_leaves_the_old_file(tmp_path):
    from pdray.errors import StorageError
    from pdray.io import atomic_output, write_json, write_text

    path = tmp_path / "sub" / "doc.json"
    write_json({"a": 1, "nan": float("nan")}, path)  # creates the folder; NaN -> null
    assert json.loads(path.read_text()) == {"a": 1, "nan": None}
    with pytest.raises(RuntimeError, match="writer crashed"), atomic_output(path) as (fs, tmp):
        with fs.open_output_stream(tmp) as out:
            out.write(b'{"half": ')
        raise RuntimeError("writer crashed")
    assert json.loads(path.read_text()) == {"a": 1, "nan": None}  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["doc.json"]  # no temporary left
    write_text("ünï\n", tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "ünï\n"
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="cannot write"):
        write_text("y", tmp_path / "file" / "below.txt")  # a file where a folder should be
