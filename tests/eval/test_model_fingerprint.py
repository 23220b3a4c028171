"""The evaluated model's id (the generation cache's namespace) follows the folder's content."""

import os
import shutil

from pdray.eval.generate import model_fingerprint


def _model(d):
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "model.safetensors").write_bytes(b"w" * 4096)
    return d


def test_id_follows_content_not_path_or_timestamps(tmp_path):
    a = _model(tmp_path / "a")
    before = model_fingerprint(str(a))
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    assert model_fingerprint(str(copy)) == before          # a copied model keeps its id
    st = (a / "model.safetensors").stat()
    os.utime(a / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert model_fingerprint(str(a)) == before             # touched only: same content
    (a / "model.safetensors").write_bytes(b"w" * 4095 + b"x")   # retrained in place, same size
    assert model_fingerprint(str(a)) != before
    assert model_fingerprint("HuggingFaceTB/SmolLM2-135M-Instruct") == \
        model_fingerprint("HuggingFaceTB/SmolLM2-135M-Instruct") != before
