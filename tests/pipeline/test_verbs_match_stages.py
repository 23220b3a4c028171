"""Issue #24: a verb is its stage. `pdray rm train`, `score`, `select` and `report`, given the
pipeline's own inputs and settings, write what `pdray run` wrote — compared by content."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file
from typer.testing import CliRunner

from pdray.cli import app
from pdray.config import dump_config, load_config
from pdray.io import read_table
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline.presets import preset
from pdray.selection.config import SelectParams
from pdray.selection.scores import read_scores


def _weights(folder: Path) -> dict:
    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        if "_ray" in f.relative_to(folder).parts:   # Ray Train's checkpoints, not the set
            continue
        for k, v in load_file(str(f)).items():
            out[f"{f.relative_to(folder)}:{k}"] = v
    return out


WHEN_WHERE = {"start", "end", "wall_seconds", "seconds", "launched_at", "finished_at",
              "model_path"}   # when and in which folder it ran, not what it made


def _content(x):
    if isinstance(x, dict):
        return {k: _content(v) for k, v in x.items() if k not in WHEN_WHERE}
    return [_content(v) for v in x] if isinstance(x, list) else x


def _differ(a, b, at="") -> list[str]:
    """The leaf paths where ``a`` and ``b`` differ (the assertion names them)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in a.keys() | b.keys()
                for p in _differ(a.get(k), b.get(k), f"{at}.{k}")]
    return [] if a == b else [f"{at}: {a!r} != {b!r}"[:200]]


def _cli(*args) -> str:
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def _by_id(table):
    return table.sort_by("id").to_pydict()


@pytest.mark.timeout(900)
def test_each_verb_writes_what_its_stage_wrote_in_the_pipeline(tmp_path, ray_local):
    cfg = load_config(PipelineConfig, None, [
        "data.n_pairs=120", "rm.max_steps=2", "run.tracking=none",
        "run.stages=[data,rm,score,select,report]", f"run.output_dir={tmp_path / 'run'}"],
        base=preset("demo"))
    res = run_pipeline(cfg, echo=lambda *_: None)
    st = res.manifests
    train = st["data"].train
    for section in ("rm", "score"):
        (tmp_path / f"{section}.yaml").write_text(dump_config(getattr(cfg, section)))
    shared = SelectParams.model_fields    # what a one-strategy selection shares with the stage
    (tmp_path / "select.yaml").write_text(yaml.safe_dump(
        {k: v for k, v in cfg.select.model_dump(mode="json").items() if k in shared}))

    # rm train: the same set (its manifest and every weight) from the same pairs and settings
    _cli("rm", "train", train, "-o", tmp_path / "rm", "-c", tmp_path / "rm.yaml")
    ours, theirs = _weights(Path(st["rm"].dir)), _weights(tmp_path / "rm")
    assert ours and ours.keys() == theirs.keys()
    for k in ours:
        np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)
    pipeline_set = json.loads((Path(st["rm"].dir) / "rm_set.json").read_text())
    diffs = _differ(_content(json.loads((tmp_path / "rm" / "rm_set.json").read_text())),
                    _content(pipeline_set))
    assert not diffs, "\n".join(diffs)

    # score: the same gaps (and the same length term) from the same set
    _cli("score", train, "--rm", st["rm"].dir, "-o", tmp_path / "scores",
         "-c", tmp_path / "score.yaml")
    assert _by_id(read_scores(tmp_path / "scores")) == _by_id(read_scores(st["score"].scores))
    verb_manifest = json.loads((tmp_path / "scores" / "manifest.json").read_text())
    assert verb_manifest["length"] == st["score"].length["scores"].model_dump(mode="json")

    # select: the same ids, scores column and manifest numbers, for every strategy
    for s, folder in st["select"].selections.items():
        _cli("select", st["score"].scores, "--strategy", s, "--data", train,
             "-o", tmp_path / "sel" / s, "-c", tmp_path / "select.yaml")
        a, b = read_table(Path(folder) / "selected.parquet"), read_table(
            tmp_path / "sel" / s / "selected.parquet")
        assert a.to_pydict() == b.to_pydict(), s
        ma, mb = (json.loads((Path(d) / "manifest.json").read_text())
                  for d in (folder, tmp_path / "sel" / s))
        for key in ("counts", "q", "length", "params", "info", "input_hashes"):
            assert ma[key] == mb[key], (s, key)
    assert read_table(tmp_path / "sel" / "pd" / "pd.parquet").to_pydict() == read_table(
        st["select"].pd).to_pydict()

    # report: the same numbers (the data counts differ: a verb's pairs file has no test split)
    _cli("report", st["score"].scores, "--data", train, "-o", tmp_path / "rep",
         "-c", tmp_path / "select.yaml",
         "--strategies", ",".join(st["select"].strategies))
    ma = json.loads((Path(st["report"].html).parent / "metrics.json").read_text())
    mb = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert ma.keys() == mb.keys()
    for key in ma.keys() - {"data"}:
        assert ma[key] == mb[key], key
