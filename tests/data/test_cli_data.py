import json

import pytest
from typer.testing import CliRunner

from pdray.cli import app
from pdray.data.loaders import read_pairs
from pdray.io import read_table

from .helpers import uf_raw_row, write_jsonl

runner = CliRunner()


def test_build_inspect_validate_pku(shared_data, tmp_path):
    out = tmp_path / "pku.parquet"
    r = runner.invoke(app, ["data", "build", str(shared_data / "preference/pku_saferlhf_500.jsonl"),
                            "--format", "pku_saferlhf", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "rows_in=500, rows_out=500" in r.output and "aspect_disagreements=117" in r.output
    assert "wrote 1000 pairs" in r.output
    assert "helpfulness        0.234" in r.output  # disagreement matrix: 117 / 500
    assert read_pairs(out).num_rows == 1000
    r = runner.invoke(app, ["data", "inspect", str(out)])
    assert r.exit_code == 0, r.output
    assert "1000 pairs, 2 aspects" in r.output and "helpfulness: 500" in r.output
    assert "conflict rate (vs mean of aspect ratings): 0.000 (234 holistic ties)" in r.output
    r = runner.invoke(app, ["data", "validate", str(out), "--min-aspects", "2"])
    assert r.exit_code == 0 and "OK (1000 pairs)" in r.output


def test_build_raw_conflict_with_report_and_quarantine(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    rows = [uf_raw_row(f"q{i}", rng.integers(1, 6, size=(4, 4)).astype(str).tolist())
            for i in range(300)]
    rows[5]["completions"][2]["annotations"]["honesty"]["Rating"] = "N/A"
    rows[7]["completions"][1]["annotations"]["truthfulness"]["Rating"] = "9"
    src = write_jsonl(tmp_path / "uf.jsonl", rows)
    out, q, rep = tmp_path / "o.parquet", tmp_path / "q.jsonl", tmp_path / "rep.json"
    r = runner.invoke(app, ["data", "build", src, "--format", "ultrafeedback_raw", "--output",
                            str(out), "--conflict", "0.2", "--seed", "1", "--quarantine", str(q),
                            "--report", str(rep)])
    assert r.exit_code == 0, r.output
    assert "rows_in=1200, rows_out=1198, quarantined=1, dropped=1" in r.output
    assert "field 'completions[2].annotations.honesty.Rating': non-numeric rating 'N/A'" in r.output
    achieved = float(r.output.split("achieved ")[1].split()[0])
    assert abs(achieved - 0.2) <= 0.01
    assert "quarantined 1 bad rows" in r.output and "disagreement" in r.output
    bad = read_table(q).to_pylist()
    assert (bad[0]["row"], bad[0]["field"]) == (7, "completions[1].annotations.truthfulness.Rating")
    report = json.loads(rep.read_text())
    assert report["build"]["achieved_conflict"] == pytest.approx(achieved, abs=1e-3)
    assert report["build"]["pairs"] + len(report["dropped_prompts"]) == 300
    assert report["load_counts"]["dropped"] == 1


def test_build_fails_with_location_exit_2(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"prompt": "p", "response_0": "a", "response_1": "b",
                             "better_response_id": "x", "safer_response_id": 0}) + "\n")
    r = runner.invoke(app, ["data", "build", str(p), "--format", "pku_saferlhf", "--output",
                            str(tmp_path / "o.parquet")])
    assert r.exit_code == 2
    assert f"error: {p}: row 0, field 'better_response_id': expected 0 or 1, got 'x'" in r.output


def test_build_config_file_and_override(tmp_path, shared_data):
    cfg = tmp_path / "build.yaml"
    cfg.write_text(f"source: {shared_data / 'preference/helpsteer2_100.jsonl'}\n"
                   f"format: helpsteer2\noutput: {tmp_path / 'hs.parquet'}\nconflict: 0.1\n")
    r = runner.invoke(app, ["data", "build", "--config", str(cfg), "seed=3"])
    assert r.exit_code == 0, r.output
    assert "built" in r.output and "from 50 prompts" in r.output
    assert "tied under every aspect" in r.output
    r = runner.invoke(app, ["data", "build", "--config", str(cfg), "conflict=2"])
    assert r.exit_code == 2 and "conflict" in r.output


def test_validate_error_and_quarantine(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "a", "aspect": "h", "prompt": "p", "chosen": "c", "rejected": "r"}\n'
                 '{"id": "b", "aspect": "h", "prompt": "p", "chosen": "", "rejected": "r"}\n')
    r = runner.invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 2 and f"error: {p}: row 1, field 'chosen': empty text" in r.output
    r = runner.invoke(app, ["data", "validate", str(p), "--quarantine", str(tmp_path / "q.parquet"),
                            "--output", str(tmp_path / "ok.parquet")])
    assert r.exit_code == 0 and "1 valid, 1 quarantined" in r.output
    assert read_pairs(tmp_path / "ok.parquet").num_rows == 1


def test_synth(tmp_path):
    r = runner.invoke(app, ["data", "synth", "--n", "500", "--output", str(tmp_path / "s.parquet"),
                            "--aspects", "a,b", "--conflict", "0.1"])
    assert r.exit_code == 0, r.output
    t = read_pairs(tmp_path / "s.parquet", min_aspects=2)
    assert t.num_rows == 500 and set(t["aspect"].to_pylist()) == {"a", "b"}
    r = runner.invoke(app, ["data", "synth", "--n", "5", "--output", str(tmp_path / "s.jsonl")])
    assert r.exit_code == 2 and "use a .parquet output" in r.output


def test_build_loader_options_and_aspect_reach_the_loader(tmp_path, shared_data):
    """``--aspect`` and ``--option k=v`` go into the loader's options; ``-o`` sets the config's
    output and wins over the YAML's; a second bare argument is a one-line error."""
    src = str(shared_data / "preference/ultrafeedback_binarized_1k.jsonl")
    cfg = tmp_path / "b.yaml"
    cfg.write_text(f"output: {tmp_path / 'from_yaml.parquet'}\n")
    out = tmp_path / "uf.parquet"
    r = runner.invoke(app, ["data", "build", src, "-f", "ultrafeedback_binarized", "-o", str(out),
                            "--aspect", "helpfulness", "--option", "aspect_column=null",
                            "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    t = read_pairs(out)
    assert t.num_rows > 0 and set(t["aspect"].to_pylist()) == {"helpfulness"}
    assert not (tmp_path / "from_yaml.parquet").exists()
    r = runner.invoke(app, ["data", "build", src, "-f", "ultrafeedback_binarized", "-o", str(out),
                            "--option", "no_such_option=1"])   # reaches the loader, which refuses it
    assert r.exit_code == 2 and "no_such_option" in r.output
    r = runner.invoke(app, ["data", "build", src, "other", "-o", str(out)])
    assert r.exit_code == 2 and "error: override 'other' is not of the form key.sub=value" in r.output
