"""Both vLLM backends refuse a mean-pooled reward model (vLLM pools the last token)."""

import json

import pytest

from pdray.errors import PdrayError
from pdray.scoring.backends import check_vllm_pooling


def test_mean_pooled_model_is_refused_and_native_is_served(tmp_path):
    mean, native = tmp_path / "mean", tmp_path / "native"
    for d, pooling in ((mean, "mean"), (native, "native")):
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"pdray_pooling": pooling}))
    with pytest.raises(PdrayError, match="mean-pooled reward model cannot be served"):
        check_vllm_pooling(str(mean))
    check_vllm_pooling(str(native))   # no error
