"""Typed stage manifests: round trips, and a marker that does not match is rebuilt, not read."""

import dataclasses
import json
from types import SimpleNamespace
from typing import get_type_hints

import pytest
from pydantic import BaseModel, ValidationError

from pdray.align.stage import DPOManifest
from pdray.data.stage import DataManifest
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.manifest import StageManifest, load_manifest
from pdray.pipeline.cache import MARKER, StageCache
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.protocol import LAYOUT_ARGS, Stage, run_stage, stage_key_of
from pdray.pipeline.stages import STAGES
from pdray.scoring.stage import ScoreManifest
from pdray.selection.stage import SelectManifest


class ScoreSection(BaseModel):
    limit: int = 0


def _select(d="/o/select"):
    return SelectManifest(dir=d, strategies=["pd", "random"],
                          selections={"pd": f"{d}/pd", "random": f"{d}/random"},
                          counts={"pd": 3, "random": 3},
                          length=LengthTerm(mode="learned", rho=0.0, fitted={"a": 0.25}),
                          gamma=0.95, q={"a": 1.5}, pd=f"{d}/pd.parquet")


def test_manifests_round_trip_through_the_marker(tmp_path):
    c = StageCache(tmp_path)
    for m in (_select(),
              DataManifest(dir="/o/d", pairs="p", train="t", test="e", rows=10, train_rows=8,
                           test_rows=2, aspects=["a", "b"], source="synthetic"),
              DPOManifest(dir="/o/dpo", models={"pd": "/o/dpo/pd/model"},
                          metrics={"pd": {"train_loss": 0.5, "heldout": {"accuracy": 0.75}}})):
        record = c.mark("x", "k" * 16, m.to_json())   # adds stage / key / finished_at
        back, why = load_manifest(type(m), json.loads(json.dumps(record)))
        assert why == "" and back == m


def test_unknown_and_missing_keys_are_refused():
    with pytest.raises(ValidationError):
        ScoreManifest(dir="/o", scores="/o/s", score="typo")
    m, why = load_manifest(ScoreManifest, {"stage": "score", "key": "k", "dir": "/o"})
    assert m is None and why == "scores: Field required"
    m, why = load_manifest(SelectManifest, {**_select().to_json(), "counts": {"pd": "many"}})
    assert m is None and why.startswith("counts.pd:")


class _Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, cfg, inputs, out, echo):
        self.calls += 1
        (out / "scores").mkdir(exist_ok=True)
        return ScoreManifest(dir=str(out), scores=str(out / "scores"),
                             length={"scores": NO_LENGTH})


def test_a_stale_or_garbled_marker_is_rebuilt_with_one_line(tmp_path):
    build = _Counter()
    stage = Stage("score", build, ScoreManifest)
    cfg, cache, lines = SimpleNamespace(), StageCache(tmp_path), []
    first = run_stage(stage, cfg, {}, cache, lines.append)
    assert build.calls == 1 and isinstance(first, ScoreManifest)
    assert run_stage(stage, cfg, {}, cache, lines.append) == first and build.calls == 1
    key = stage_key_of(stage, cfg, {})
    marker = cache.path("score", key) / MARKER
    rec = json.loads(marker.read_text())
    # a marker from another version: a key renamed
    rec["scores_dir"] = rec.pop("scores")
    marker.write_text(json.dumps(rec))
    lines.clear()
    again = run_stage(stage, cfg, {}, cache, lines.append)
    assert build.calls == 2 and again == first
    assert any("does not match this version's ScoreManifest" in x and "recomputing" in x
               for x in lines), lines
    # a truncated marker
    marker.write_text('{"dir": "/o", "sco')
    lines.clear()
    run_stage(stage, cfg, {}, cache, lines.append)
    assert build.calls == 3 and any("_stage.json is unreadable (JSONDecodeError): recomputing" in x
                                   for x in lines), lines
    assert load_manifest(ScoreManifest, json.loads(marker.read_text()))[0] == first


def test_a_build_returning_another_type_is_an_error(tmp_path):
    stage = Stage("score", lambda cfg, i, out, echo: {"dir": str(out)}, ScoreManifest)
    with pytest.raises(TypeError, match="run returned dict, not ScoreManifest"):
        run_stage(stage, SimpleNamespace(), {}, StageCache(tmp_path), lambda *_: None)
    assert not list(tmp_path.glob(f"*/{MARKER}"))   # nothing marked finished


def test_every_stage_is_a_package_stage_run_with_the_args_it_is_keyed_on():
    """Each stage's work is its package's ``stage.run(cfg, inputs, out, echo, **args)``; the
    wiring passes exactly the keyword arguments ``run`` declares, and those are keyed (less the
    layout arguments only a verb passes)."""
    import inspect

    cfg = PipelineConfig()
    for name, stage in STAGES.items():
        mod = inspect.getmodule(stage.run)
        assert mod.__name__.endswith(".stage") and stage.run.__name__ == "run", name
        assert mod.__name__.startswith("pdray.") and issubclass(stage.manifest, StageManifest)
        params = inspect.signature(stage.run).parameters
        assert list(params)[:4] == ["cfg", "inputs", "out", "echo"], name
        kw = {p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY
              and p not in LAYOUT_ARGS}
        assert kw == set(stage.args(cfg) if stage.args else {}), name
        assert get_type_hints(stage.run)["return"] is stage.manifest, name


def test_a_value_passed_from_another_section_is_in_the_key():
    """dpo's strategies come from run.dpo_strategies: changing them changes dpo's key only."""
    a = PipelineConfig()
    b = PipelineConfig(run={"dpo_strategies": ["pd"]})
    assert stage_key_of(STAGES["dpo"], a, {}) != stage_key_of(STAGES["dpo"], b, {})
    assert stage_key_of(STAGES["select"], a, {}) == stage_key_of(STAGES["select"], b, {})


def test_the_stage_table_is_the_graph(monkeypatch):
    """``run.stages`` (its default, the names it accepts, what each stage needs) and the order
    the stages run in come from the table alone: adding a stage there is all it takes."""
    from pdray.config import load_config
    from pdray.errors import ConfigError
    from pdray.pipeline import stages as S

    for i, (name, stage) in enumerate(STAGES.items()):   # a stage reads earlier stages only
        assert set(stage.inputs) <= set(list(STAGES)[:i]), name
    assert PipelineConfig().run.stages == ["data", "rm", "score", "select", "dpo", "report"]
    assert S.run_order(["report", "rm", "score", "select"]) == [
        "data", "rm", "score", "select", "report"]
    assert S.run_order(["rm", "score", "select", "dpo"], upto="select") == [
        "data", "rm", "score", "select"]
    with pytest.raises(ConfigError, match=r"run\.stages: eval needs the dpo stage"):
        load_config(PipelineConfig, None, ["run.stages=[data,rm,score,select,eval]"])
    with pytest.raises(ConfigError, match=r"run\.stages: unknown stage 'audit' \(stages: data, "):
        load_config(PipelineConfig, None, ["run.stages=[data,rm,score,select,audit]"])

    audit = Stage("audit", lambda cfg, inputs, out, echo: None, StageManifest,
                  reads=("select",), also_reads=("dpo",), runs="opt-in")
    monkeypatch.setitem(STAGES, "audit", audit)
    cfg = load_config(PipelineConfig, None, ["run.stages=[audit,data,rm,score,select]"])
    assert S.run_order(cfg.run.stages) == ["data", "rm", "score", "select", "audit"]
    assert "audit" not in PipelineConfig().run.stages   # opt-in
    with pytest.raises(ConfigError, match=r"run\.stages: audit needs the select stage"):
        load_config(PipelineConfig, None, ["run.stages=[data,audit]"])
    monkeypatch.setitem(STAGES, "audit", dataclasses.replace(audit, runs="default"))
    assert PipelineConfig().run.stages[-1] == "audit"


def test_a_changed_key_says_what_changed_from_the_marker(tmp_path):
    """The change message compares the new key's payload with the one kept in the last
    finished marker (``inputs``), both handed over by ``run_stage``: no state between calls."""
    build = _Counter()
    stage = Stage("score", build, ScoreManifest, section="s")
    cache, lines = StageCache(tmp_path, echo=None), []
    run_stage(stage, SimpleNamespace(s=ScoreSection(limit=1)), {}, cache, lines.append)
    rec = json.loads(next(tmp_path.glob(f"score-*/{MARKER}")).read_text())
    assert rec["inputs"] == {"cfg": {"limit": 1}, "inputs": {}}
    cache = StageCache(tmp_path, echo=lines.append)   # a later run, another process
    run_stage(stage, SimpleNamespace(s=ScoreSection(limit=2)), {}, cache, lines.append)
    assert build.calls == 2
    assert "[score] inputs changed since the last finished run (cfg.limit 1 -> 2): recomputing" \
        in lines, lines
