"""pdray.eval's names load on first use (so its config is light) and every one of them resolves."""

import subprocess
import sys

import pytest

import pdray.eval as E


def test_every_public_name_resolves_to_its_module():
    for name in E.__all__:
        obj = getattr(E, name)
        assert getattr(obj, "__module__", "pdray.eval").startswith("pdray.eval"), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        E.nope  # noqa: B018


def test_the_eval_config_imports_no_torch():
    code = ("import sys; from pdray.eval import EvalConfig; EvalConfig(); "
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
