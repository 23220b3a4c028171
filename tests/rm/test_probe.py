"""Head-only reward models (rm.train_backbone=false): the probe's fit, its features, end to end."""

import json

import numpy as np
import pytest
import torch

from pdray.data import synthetic_pairs
from pdray.models.backbones import load_reward_backbone
from pdray.models.reward import reward_logits_ids
from pdray.models.tiny import build_tiny_reward_model
from pdray.rm import RMConfig, train_reward_models
from pdray.rm.probe import fit_head, pooled_states


def _bt(d, w, margin=None, mode="none", coef=None):
    z = d @ w
    if mode == "learned":
        z = z + coef * margin
    return float(np.mean(np.logaddexp(0.0, -z)))


def test_fit_head_is_the_minimiser_of_the_penalised_bt_loss():
    rng = np.random.default_rng(0)
    true = rng.normal(size=6)
    d = rng.normal(size=(200, 6)) * np.array([1, 2, 3, 0.5, 1, 4])
    flip = rng.random(200) < 1 / (1 + np.exp(d @ true))   # orient pairs by a BT draw
    d[flip] *= -1
    fit = fit_head(d, np.zeros(200), None, None, length_debias="none", l2_grid=[0.01])
    scale = np.sqrt(np.mean(d ** 2, axis=0))
    wz = torch.tensor(fit.weight * scale, requires_grad=True)
    dz = torch.tensor(d / scale)
    obj = torch.nn.functional.softplus(-(dz @ wz)).mean() + 0.01 * (wz * wz).sum()
    obj.backward()
    assert wz.grad.abs().max().item() < 1e-5            # stationary point of the direct formula
    assert fit.train_loss == pytest.approx(_bt(d, fit.weight), abs=1e-9)
    assert np.corrcoef(fit.weight, true)[0, 1] > 0.8


def test_dev_split_chooses_the_l2_and_refits_on_all_rows():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(60, 40))                      # noise: the dev loss wants a strong L2
    dev = rng.normal(size=(40, 40))
    fit = fit_head(d, np.zeros(60), dev, np.zeros(40), length_debias="none",
                   l2_grid=[1e-4, 1.0])
    assert set(fit.dev_losses) == {1e-4, 1.0}
    assert fit.l2 == 1.0 and fit.dev_losses[1.0] < fit.dev_losses[1e-4]
    assert fit.dev_loss == fit.dev_losses[1.0]


def test_learned_length_coefficient_takes_a_length_only_signal():
    rng = np.random.default_rng(2)
    n = 400
    dlen = rng.normal(size=n) * 3
    d = rng.normal(size=(n, 5))                        # features carry nothing
    keep = rng.random(n) < 1 / (1 + np.exp(-2 * dlen))  # the label follows length alone
    dlen = np.where(keep, dlen, -dlen)
    d = np.where(keep[:, None], d, -d)
    fit = fit_head(d, dlen, None, None, length_debias="learned", l2_grid=[1e-3], coef0=0.0)
    assert fit.length_coef == pytest.approx(2.0, rel=0.3)
    assert np.abs(d @ fit.weight).mean() < 0.15 * np.abs(fit.length_coef * dlen).mean()


def test_pooled_states_are_what_the_scoring_forward_reads(tmp_path):
    folder = build_tiny_reward_model(tmp_path / "rm", seed=3)
    model, tok = load_reward_backbone(str(folder), 1, fresh_head="zeros")
    torch.nn.init.normal_(model.score.weight)
    enc = [tok("hello there friend")["input_ids"], tok("a much longer reply, with more words in")["input_ids"]]
    phi = pooled_states(model, "native", enc, tok.pad_token_id)
    logits = reward_logits_ids(model, tok.pad_token_id, enc)
    expect = phi @ model.score.weight.detach().numpy().T
    np.testing.assert_allclose(logits, expect, rtol=1e-4, atol=1e-5)


def test_backbone_cut_to_its_first_layers_reads_that_layer_through_the_final_norm(tmp_path):
    """rm.backbone_layers=N: the model keeps layers 1..N with their weights; its pooled state is
    the full model's layer-N state through the final norm (benchmarks/probe_layers.py's
    feature); saved and reloaded it is an N-layer model; too many layers is a clear error."""
    from transformers import AutoModel

    from pdray.errors import PdrayError

    folder = build_tiny_reward_model(tmp_path / "rm", seed=5, layers=3)
    cut, tok = load_reward_backbone(str(folder), 1, fresh_head="zeros", num_layers=2)
    assert cut.config.num_hidden_layers == 2 and len(cut.model.layers) == 2
    full = AutoModel.from_pretrained(str(folder)).eval()
    enc = [tok("hello there friend")["input_ids"], tok("a longer reply, with more words")["input_ids"]]
    phi = pooled_states(cut, "mean", enc, tok.pad_token_id)
    with torch.inference_mode():
        for i, ids in enumerate(enc):
            h = full(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[2]
            np.testing.assert_allclose(phi[i], full.norm(h)[0].mean(0).numpy(), rtol=1e-4,
                                       atol=1e-5)
    cut.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    again, _ = load_reward_backbone(str(tmp_path / "saved"), None)
    assert again.config.num_hidden_layers == 2
    with pytest.raises(PdrayError, match="backbone_layers=4: .* has 3 layers"):
        load_reward_backbone(str(folder), 1, num_layers=4)


@pytest.mark.timeout(600)
def test_head_only_training_end_to_end(ray_local, tmp_path):
    pairs = synthetic_pairs(120, aspects=["helpfulness", "honesty"], seed=4)
    cfg = RMConfig(backbone="tiny", train_backbone=False, head_l2=[0.01, 1.0], max_length=96,
                   cpus_per_worker=0.5, length_debias="learned", backbone_layers=1)
    logs = []
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=logs.append)
    assert any("fitting the head on frozen features" in line for line in logs)
    for a in s.aspects:   # the saved reward models are the 1-layer cut of the 2-layer tiny model
        config = json.loads((s.model_dir(str(tmp_path / "rm"), a) / "config.json").read_text())
        assert config["num_hidden_layers"] == 1
    for a in s.aspects:
        m = s.extra["units"][a]["train"]
        assert m["head_l2"][0] in (0.01, 1.0) and m["steps"] > 0
        assert len(m["learned_rho_per_token"]) == 1
        assert m["train_loss"] < np.log(2)           # the head fitted something


def test_too_many_backbone_layers_is_refused_before_any_worker(ray_local, tmp_path):
    from pdray.errors import PdrayError

    pairs = synthetic_pairs(40, aspects=["helpfulness", "honesty"], seed=4)
    cfg = RMConfig(backbone="tiny", train_backbone=False, backbone_layers=5, cpus_per_worker=0.5)
    logs = []
    with pytest.raises(PdrayError, match="backbone_layers=5: .* has 2 layers"):
        train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=logs.append)
    assert not any("training units" in line for line in logs)   # refused before planning


def test_head_only_settings_are_checked_up_front():
    from pdray.config import load_config
    from pdray.errors import ConfigError

    with pytest.raises(ConfigError, match="head_l2 values must be"):
        load_config(RMConfig, None, ["head_l2=[0.1,-1]"])
    with pytest.raises(ConfigError, match="train_backbone=false fits only the head"):
        load_config(RMConfig, None, ["train_backbone=false", "lora={r: 8}"])
    with pytest.raises(ConfigError, match="num_workers_per_aspect=1"):
        load_config(RMConfig, None, ["train_backbone=false", "num_workers_per_aspect=2"])
    assert load_config(RMConfig, None, ["train_backbone=false"]).train_backbone is False
