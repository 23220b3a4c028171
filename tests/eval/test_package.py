"""pdray.eval's names load on first use (so its config is light) and every one of them resolves."""

import pytest

import pdray.eval as E
from tests.imports import heavy_modules_loaded


def test_every_public_name_resolves_to_its_module():
    for name in E.__all__:
        obj = getattr(E, name)
        assert getattr(obj, "__module__", "pdray.eval").startswith("pdray.eval"), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        E.nope  # noqa: B018


def test_the_eval_config_imports_no_torch():
    assert heavy_modules_loaded("from pdray.eval import EvalConfig; EvalConfig()") == []
