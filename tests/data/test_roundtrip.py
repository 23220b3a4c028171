import pyarrow as pa
import pytest

from pdray.data import load_source, synthetic_pairs
from pdray.data.loaders import read_pairs
from pdray.io import write_pairs


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_pairs_round_trip(tmp_path, suffix):
    t = synthetic_pairs(300, ["helpfulness", "honesty"], seed=7)
    path = write_pairs(t, tmp_path / f"p{suffix}")
    back = read_pairs(path, min_aspects=2)
    assert back.select(t.column_names).to_pylist() == t.to_pylist()
    via = load_source(path, "pairs", min_aspects=2)
    assert via.table.num_rows == 300 and via.counts["rows_out"] == 300


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_loaded_real_pairs_round_trip(shared_data, tmp_path, suffix):
    t = load_source(str(shared_data / "preference/pku_saferlhf_500.jsonl"), "pku_saferlhf").table
    path = write_pairs(t, tmp_path / f"pku{suffix}")
    assert read_pairs(path).to_pylist() == t.to_pylist()


def test_source_formats_read_from_parquet_and_gzip(shared_data, tmp_path):
    import gzip
    import shutil

    src = shared_data / "preference/helpsteer2_100.jsonl"
    gz = tmp_path / "hs.jsonl.gz"
    with open(src, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    from pdray.io import read_table, write_table

    pq_path = write_table(read_table(src), tmp_path / "hs.parquet")
    a = load_source(str(src), "helpsteer2").table
    assert load_source(str(gz), "helpsteer2").table.equals(a)
    assert load_source(pq_path, "helpsteer2").table.equals(a)
    assert isinstance(a, pa.Table)
