"""The verb factory (pdray.cli.verbs.stage_verb, issue #14): one declaration gives the inputs,
-o, --config, the key=value overrides, the shortcut options and the generated help; settings
are layered base < --config < shortcuts < key=value overrides, the same order for every verb
(issue #24); the output is checked before Ray starts
and before the stage runs."""

import contextlib
import io
import subprocess
import sys

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from pdray.cli import main
from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.config import StrictModel

runner = CliRunner()


class Inner(StrictModel):
    lr: float = Field(0.1, gt=0, description="the step size")


class ToyConfig(StrictModel):
    num_actors: int = Field(1, ge=1, description="how many actors")
    mode: str = Field("a", description="the mode letter")
    tags: list[str] = Field(default_factory=list, description="labels to keep")
    inner: Inner = Inner()


TOY = f"{__name__}:ToyConfig"


def _app(calls: list, **kw) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root():
        pass

    def run(cfg, inputs, output, echo):
        calls.append((cfg, dict(inputs), output))
        echo(f"ran -> {output}")

    kw.setdefault("config", TOY)
    kw.setdefault("inputs", [Input("pairs", "the pairs file"),
                             Input("rm", "the reward models", option="--rm"),
                             Input("flag", "a switch", option="--flag/--no-flag", type=bool,
                                   default=False)])
    stage_verb(app, "toy", run=run, help="Do the toy stage.", **kw)
    return app


def _invoke(app, *args):
    return runner.invoke(app, ["toy", *map(str, args)], terminal_width=200)


def test_help_lists_inputs_output_config_and_every_setting():
    r = _invoke(_app([], shortcuts=[Shortcut("num_actors", int)]), "--help")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    for word in ("Do the toy stage.", "pairs", "the pairs file", "--rm", "the reward models",
                 "--flag", "--output", "-o", "--config", "-c", "overrides", "--num-actors",
                 "how many actors; default 1.",     # the shortcut's help: the field's
                 "num_actors=1 how many actors", "mode='a' the mode letter",
                 "tags=[] labels to keep", "inner.lr=0.1 the step size"):
        assert word in text, word


def test_inputs_overrides_and_shortcuts_reach_the_config(tmp_path):
    calls: list = []
    app = _app(calls, shortcuts=[Shortcut("num_actors", int), "mode"])
    (tmp_path / "c.yaml").write_text("mode: y\nnum_actors: 3\ninner: {lr: 0.5}\n")
    r = _invoke(app, "p.jsonl", "--rm", "RMS", "-o", tmp_path / "out", "--flag",
                "--config", tmp_path / "c.yaml", "num_actors=4", "tags=[x,y]")
    assert r.exit_code == 0, r.output
    cfg, inputs, output = calls[0]
    assert (cfg.mode, cfg.num_actors, cfg.tags, cfg.inner.lr) == ("y", 4, ["x", "y"], 0.5)
    assert inputs == {"pairs": "p.jsonl", "rm": "RMS", "flag": True}
    assert output == tmp_path / "out" and f"ran -> {output}" in r.output
    # a shortcut wins over the YAML; a key=value override wins over both
    r = _invoke(app, "p", "--rm", "R", "-o", tmp_path / "o2", "num_actors=4",
                "--num-actors", "5", "--mode", "z", "--config", tmp_path / "c.yaml")
    assert r.exit_code == 0, r.output
    assert (calls[1][0].num_actors, calls[1][0].mode) == (4, "z")


def test_overrides_last_base_and_settings_layers(tmp_path):
    calls: list = []
    app = _app(calls, shortcuts=[Shortcut("num_actors", int)],
               base=lambda inputs: {"mode": "p", "num_actors": 2},
               settings=lambda inputs: {"tags": ["on"]} if inputs["flag"] else {})
    r = _invoke(app, "p", "--rm", "R", "-o", tmp_path / "o", "--num-actors", "5", "num_actors=4")
    assert r.exit_code == 0, r.output
    assert (calls[0][0].num_actors, calls[0][0].mode, calls[0][0].tags) == (4, "p", [])
    (tmp_path / "c.yaml").write_text("mode: y\n")
    r = _invoke(app, "p", "--rm", "R", "-o", tmp_path / "o", "--flag", "-c", tmp_path / "c.yaml")
    assert r.exit_code == 0, r.output
    assert (calls[1][0].num_actors, calls[1][0].mode, calls[1][0].tags) == (2, "y", ["on"])


def test_bad_settings_are_one_line_naming_the_key(tmp_path):
    calls: list = []
    app = _app(calls, shortcuts=[Shortcut("num_actors", int)], one_line_errors=True)
    for bad, key in ((["num_actors=0"], "num_actors=0"), (["--num-actors", "0"], "num_actors=0"),
                     (["nope=1"], "unknown key 'nope'"), (["inner.lr=-1"], "inner.lr=-1")):
        r = _invoke(app, "p", "--rm", "R", "-o", tmp_path / "o", *bad)
        errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
        assert r.exit_code == 2 and len(errors) == 1 and key in errors[0], (bad, r.output)
    assert calls == [] and not (tmp_path / "o").exists()


def _main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, err.getvalue()


@pytest.mark.parametrize("argv, key", [
    (["score", "p.jsonl", "--rm", "R", "num_actors=0"], "num_actors=0"),
    (["score", "p.jsonl", "--rm", "R", "--num-actors", "0"], "num_actors=0"),
    (["rm", "train", "p.jsonl", "nope=1"], "unknown key 'nope'"),
    (["dpo", "p.jsonl", "--loss", "ipo"], "loss='ipo'"),
    (["lossdiff", "score", "p", "--policy", "a", "--reference", "b", "--aux", "c", "beta=-1"],
     "beta=-1"),
])
def test_stage_verbs_bad_setting_is_one_line_exit_2(tmp_path, monkeypatch, argv, key):
    """The real verbs: the config is validated before the output check, Ray and the stage."""
    import pdray.raysetup

    monkeypatch.setattr(pdray.raysetup, "init_ray", lambda **k: pytest.fail("Ray started"))
    code, err = _main([*argv, "-o", str(tmp_path / "o")])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert key in lines[0] and "Traceback" not in err


def test_output_is_checked_before_ray_and_the_stage(tmp_path, monkeypatch):
    import pdray.raysetup

    started: list = []
    monkeypatch.setattr(pdray.raysetup, "init_ray", lambda **k: started.append(k))
    calls: list = []
    app = _app(calls, needs_ray=True, verbose=True, one_line_errors=True)
    (tmp_path / "file").write_text("x")
    r = _invoke(app, "p", "--rm", "R", "-o", tmp_path / "file")
    assert r.exit_code == 2 and "a file is in the way" in r.output and "error:" in r.output
    assert calls == [] and started == []
    # the real score verb: the same check before Ray
    code, err = _main(["score", "p.jsonl", "--rm", "R", "-o", str(tmp_path / "file")])
    assert code == 2 and "a file is in the way" in err and started == []
    # Ray is quiet unless --verbose, which reaches the stage as an input
    assert _invoke(app, "p", "--rm", "R", "-o", tmp_path / "a").exit_code == 0
    assert _invoke(app, "p", "--rm", "R", "-o", tmp_path / "b", "--verbose").exit_code == 0
    assert started == [{"quiet": True}, {"quiet": False}]
    assert [c[1]["verbose"] for c in calls] == [False, True]


def test_a_verb_without_config_and_bad_declarations(tmp_path):
    calls: list = []
    app = _app(calls, config=None, inputs=[Input("scores", "the scores")])
    r = _invoke(app, "--help")
    assert r.exit_code == 0 and "--output" in r.output and "--config" not in r.output
    assert _invoke(app, "s", "-o", tmp_path / "o", "k=v").exit_code == 2   # no overrides here
    assert _invoke(app, "s", "-o", tmp_path / "o").exit_code == 0
    assert calls == [(None, {"scores": "s"}, tmp_path / "o")]
    with pytest.raises(ValueError, match=r"reserved: \['output'\]"):
        _app([], inputs=[Input("output")])
    with pytest.raises(ValueError, match="there is no config"):
        _app([], config=None, shortcuts=["mode"])


def test_help_of_every_verb_imports_no_heavy_package():
    code = ("import sys\nfrom pdray.cli import main\n"
            "for argv in (['--help'], ['score', '--help'], ['rm', 'train', '--help'], "
            "['dpo', '--help'], ['lossdiff', 'score', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print([m for m in ('torch', 'trl', 'transformers', 'ray') if m in sys.modules], "
            "file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr


@pytest.mark.parametrize("flag, seen", [([], None), (["--verbose"], "1")])
def test_score_verbose_shows_ray_output_while_the_stage_runs_only(monkeypatch, tmp_path, flag,
                                                                  seen):
    """``pdray score --verbose`` is PDRAY_VERBOSE=1 for the score stage it runs (Ray's worker
    output on the terminal), and the variable is restored afterwards."""
    import os

    from pdray.cli import app
    from pdray.rm.model_set import RewardModelSet
    from pdray.scoring import stage

    monkeypatch.delenv("PDRAY_VERBOSE", raising=False)
    RewardModelSet("separate", ["a", "b"], {"a": "a", "b": "b"}, length_debias="penalty",
                   rho=0.0).save(tmp_path)
    calls = []
    monkeypatch.setattr(stage, "run", lambda cfg, inputs, out, echo, flat: calls.append(
        (os.environ.get("PDRAY_VERBOSE"), inputs["rm"].aspects, inputs["data"].train, flat)))
    r = runner.invoke(app, ["score", "p.jsonl", "--rm", str(tmp_path), "-o",
                            str(tmp_path / "s"), *flag])
    assert r.exit_code == 0, r.output
    assert calls == [(seen, ["a", "b"], "p.jsonl", True)]
    assert "PDRAY_VERBOSE" not in os.environ
