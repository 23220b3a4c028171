"""Every malformed input of the corpus ends in its exact expected outcome: a one-line
``error: FILE: row N, field 'F': …`` with exit 2, or a counted quarantine; never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pdray.cli import app, main
from pdray.errors import PdrayError

from .corpus import CASES, Case

runner = CliRunner()


def _make(tmp_path, case: Case) -> dict:
    paths = {}
    for name, content in case.files.items():
        p = tmp_path / name
        if callable(content):
            content(p)
        else:
            p.write_bytes(content)
        paths.setdefault("in", str(p))
    return {"in": paths.get("in", ""), "tmp": str(tmp_path), "out": str(tmp_path / "out.parquet")}


def _inject(monkeypatch, patch: str | None) -> None:
    if patch == "disk-full":
        import pyarrow.parquet as pq

        def full(*a, **k):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pq, "write_table", full)
    elif patch == "read-only":  # as root chmod does not stop writes: fake the permission check
        import pdray.io

        monkeypatch.setattr(pdray.io.os, "access", lambda *a, **k: False)
    elif patch == "app-oserror":  # a fault no command catches reaches the CLI boundary
        import pdray.cli

        def fault(*a, **k):
            raise OSError(28, "No space left on device", "/data/out/x.parquet")

        monkeypatch.setattr(pdray.cli, "app", fault)
    elif patch == "synth-oserror":
        import pdray.data

        def denied(path, *a, **k):
            raise PermissionError(13, "Permission denied", path)

        monkeypatch.setattr(pdray.data, "write_synthetic", denied)


def _run(case: Case, args: list[str]) -> tuple[int, str]:
    if case.verb == "cli":
        r = runner.invoke(app, args)
        assert r.exception is None or isinstance(r.exception, SystemExit), (
            f"traceback instead of an error line: {r.exception!r}")
        return r.exit_code, r.output
    if case.verb == "main":
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
            main(args)
        return e.value.code, err.getvalue()
    from pdray.data.loaders import read_pairs
    from pdray.io import read_table

    try:
        t = {"read_table": read_table, "read_pairs": read_pairs}[case.verb](args[0])
    except PdrayError as e:
        return 2, f"error: {e}\n"
    return 0, f"columns={','.join(t.column_names)} rows={t.num_rows}\n"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input(tmp_path, monkeypatch, case: Case):
    where = _make(tmp_path, case)
    args = [a.format(**where) for a in case.args] or [where["in"]]
    _inject(monkeypatch, case.patch)
    code, out = _run(case, args)
    assert code == case.code, out
    for frag in case.expect:
        assert frag.format(**where) in out, out
    assert "Traceback" not in out
    errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(errors) == (1 if case.code == 2 else 0), out


def test_corpus_size():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
