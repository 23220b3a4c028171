"""The pipeline's data stage sets bad rows aside with ``data.quarantine`` (as `pdray data build`
does); without it the one-line error says how to go on."""

import json

import pyarrow.parquet as pq
import pytest

from pdray.data.config import DataStageConfig
from pdray.data.stage import run
from pdray.errors import DataError
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.runner import run_pipeline
from tests.data.helpers import write_jsonl


def _pairs(tmp_path):
    rows = [{"id": f"p{i}", "aspect": "helpfulness" if i % 2 else "honesty",
             "prompt": f"question {i}", "chosen": f"a good answer {i}",
             "rejected": f"a worse answer {i}"} for i in range(12)]
    for i in (3, 8):                    # a real export's byte-identical responses
        rows[i]["rejected"] = rows[i]["chosen"]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def test_bad_rows_stop_the_stage_with_the_way_to_go_on(tmp_path):
    src = _pairs(tmp_path)
    with pytest.raises(DataError) as e:
        run(DataStageConfig(source=src, format="pairs"), {}, tmp_path / "out", print)
    msg = str(e.value)
    assert "\n" not in msg and src in msg and "row 3" in msg and "field 'rejected'" in msg
    assert "identical to chosen" in msg and "data.quarantine=FILE" in msg


def test_quarantine_sets_rows_aside_counts_them_and_keys_the_stage(tmp_path):
    src, q = _pairs(tmp_path), tmp_path / "bad.jsonl"
    lines = []
    m = run(DataStageConfig(source=src, format="pairs", quarantine=str(q), test_fraction=0.25),
            {}, tmp_path / "out", lines.append)
    assert (m.rows, m.quarantined, m.quarantine) == (10, 2, str(q.resolve()))
    assert m.train_rows + m.test_rows == 10
    bad = [json.loads(x) for x in q.read_text().splitlines()]
    assert [b["row"] for b in bad] == [3, 8] and {b["field"] for b in bad} == {"rejected"}
    assert "p3" not in pq.read_table(m.pairs)["id"].to_pylist()
    assert any("2 bad row(s) set aside" in ln for ln in lines)


def test_pdray_run_with_quarantine_finishes_the_data_stage_and_reruns_cached(tmp_path):
    src, q = _pairs(tmp_path), tmp_path / "bad.jsonl"
    cfg = PipelineConfig.model_validate({
        "data": {"source": src, "format": "pairs", "quarantine": str(q)},
        "run": {"output_dir": str(tmp_path / "run"), "stages": ["data"], "tracking": "none"}})
    first = run_pipeline(cfg, echo=lambda _: None)
    assert first.manifests["data"].quarantined == 2
    lines = []
    run_pipeline(cfg, echo=lines.append)   # the quarantine file is part of the stage's key
    assert any("cached" in ln.lower() or "reus" in ln.lower() for ln in lines), lines
