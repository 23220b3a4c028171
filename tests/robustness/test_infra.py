"""Real infrastructure faults (not injected): a read-only output folder, an unreadable input."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from pdray.cli import app

from .corpus import GOOD3

runner = CliRunner()
needs_non_root = pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")


@needs_non_root
def test_read_only_output_folder(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_bytes(GOOD3)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = runner.invoke(app, ["data", "build", str(src), "-o", str(ro / "o.parquet")])
    finally:
        ro.chmod(0o700)
    assert r.exit_code == 2, r.output
    assert f"error: {ro / 'o.parquet'}: cannot write: folder {ro} is not writable" in r.output


@needs_non_root
def test_unreadable_input(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_bytes(GOOD3)
    src.chmod(0o000)
    try:
        r = runner.invoke(app, ["data", "validate", str(src)])
    finally:
        src.chmod(0o600)
    assert r.exit_code == 2, r.output
    assert f"error: {src}: cannot read: Permission denied" in r.output
