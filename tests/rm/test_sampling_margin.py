import math

import numpy as np
import pyarrow as pa
import pytest

from pdray.rm import (
    balanced_shares,
    length_balanced_indices,
    length_balanced_sample,
    margin_for,
    training_rows,
)
from pdray.rm.config import PAPER_SYSTEM_PROMPTS, RMConfig
from pdray.rm.dataset import delta_len
from pdray.schema import pairs_from_rows


def test_eq16_hand_computed():
    # f⁺ = 0.8: f̂⁺ = e^0.8 / (e^0.8 + e^0.2) = 1 / (1 + e^−0.6)
    assert balanced_shares(0.8, 1.0)[0] == pytest.approx(1 / (1 + math.exp(-0.6)))
    assert balanced_shares(0.8, 1.0)[0] == pytest.approx(0.645656, abs=1e-6)
    assert balanced_shares(0.8, 0.1)[0] == pytest.approx(1 / (1 + math.exp(-6)))   # τ→0: majority
    assert balanced_shares(0.8, 100.0)[0] == pytest.approx(0.5015, abs=1e-4)      # τ→∞: 50/50
    assert sum(balanced_shares(0.3, 0.7)) == pytest.approx(1.0)


def test_length_balanced_indices_counts():
    dlen = np.array([5] * 80 + [-5] * 20)
    idx, st = length_balanced_indices(dlen, tau=1.0, sample_ratio=0.5, seed=0)
    # 50 rows: round(50·0.645656) = 32 from D⁺, round(50·0.354344) = 18 from D⁻
    assert len(idx) == 50 and int(np.sum(dlen[idx] > 0)) == 32
    assert st["f_plus"] == 0.8 and st["sampled_plus_share"] == pytest.approx(0.64)
    # capped at what D⁻ holds
    idx, _ = length_balanced_indices(np.array([5] * 95 + [-5] * 5), tau=100.0, sample_ratio=1.0, seed=0)
    assert int(np.sum(idx >= 95)) == 5
    uni, st = length_balanced_indices(dlen, tau=1.0, sample_ratio=0.3, seed=0, balanced=False)
    assert len(uni) == 30 and not st["balanced"]
    again, _ = length_balanced_indices(dlen, tau=1.0, sample_ratio=0.5, seed=0)
    assert again.tolist() == idx.tolist() or len(again) == 50


def test_margin_column_is_rho_times_dlen(tiny_rm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_rm)
    t = pairs_from_rows([
        {"id": "a", "aspect": "h", "prompt": "Hi", "chosen": "one two three four five six",
         "rejected": "one"},
        {"id": "b", "aspect": "h", "prompt": "Hi", "chosen": "ok", "rejected": "ok ok ok ok"}])
    d = delta_len(tok, t)
    n = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])
    assert d.tolist() == [n("one two three four five six") - n("one"), n("ok") - n("ok ok ok ok")]
    rows = training_rows(tok, t, max_length=64, rho=0.01, length_debias="penalty")
    assert rows["margin"] == pytest.approx((0.01 * d).tolist())
    # poe keeps the feature ρ·Δlen; the loss adds it (pdray.rm.losses.bt_loss)
    assert margin_for(d, 0.01, "poe").tolist() == pytest.approx((0.01 * d).tolist())
    assert margin_for(d, 0.0, "learned", 2.0).tolist() == pytest.approx((d / 2).tolist())
    assert margin_for(d, 0.01, "none").tolist() == [0.0, 0.0]
    # the ids are exactly what scoring feeds the model
    from pdray.models.formatting import pair_text

    assert rows["chosen_ids"][0] == tok(pair_text(tok, "Hi", "one two three four five six"),
                                        truncation=True, max_length=64)["input_ids"]


def test_config_presets_and_prompts():
    assert RMConfig.paper().lr == 2e-5 and RMConfig.paper().max_length == 4096
    c = RMConfig()
    assert c.system_prompt("honesty") == PAPER_SYSTEM_PROMPTS["honesty"]
    assert c.system_prompt("harmlessness") == "You judge responses for harmlessness."


def test_poe_loss_value():
    import torch

    from pdray.rm.losses import bt_loss
    # poe: −log σ(Δr + ρΔlen)
    dr, rho, dl = torch.tensor([0.5]), 0.01, torch.tensor([20.0])
    m = torch.tensor(margin_for(dl.numpy(), rho, "poe"))
    loss = bt_loss(dr, torch.zeros(1), m, "poe")
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-(0.5 + 0.2)))))


def test_length_balanced_sample_on_a_table():
    # D_k: 8 pairs with len(y_w) ≥ len(y_l) (Δlen = 0 counts as D⁺), 2 with len(y_w) < len(y_l)
    dl = [3, 0, 1, 7, 2, 2, 9, 4, -5, -1]
    t = pairs_from_rows([{"id": f"r{i}", "aspect": "h", "prompt": "p", "chosen": "a",
                          "rejected": "b"} for i in range(10)]).append_column("dlen", pa.array(dl))
    # f⁺ = 0.8, τ = 1: f̂⁺ = 0.645656; p_r = 0.5 → 5 rows: round(3.228) = 3 from D⁺, round(1.772) = 2
    out, st = length_balanced_sample(t, 1.0, 0.5, 7, "dlen")
    assert out.num_rows == 5 and (st["sampled_plus"], st["sampled_minus"]) == (3, 2)
    assert st["sampled_plus_share"] == pytest.approx(0.6) and st["sampled_minus_share"] == pytest.approx(0.4)
    assert st["f_hat_plus"] == pytest.approx(0.645656, abs=1e-6)
    assert sorted(x for x in out["dlen"].to_pylist() if x < 0) == [-5, -1]
    assert out["id"].to_pylist() == sorted(out["id"].to_pylist(), key=lambda s: int(s[1:]))
    same, _ = length_balanced_sample(t, 1.0, 0.5, 7, np.array(dl))
    assert same["id"].to_pylist() == out["id"].to_pylist()                    # seeded
    # τ small: nearly all from the majority side, capped by |D⁺| = 8
    out, st = length_balanced_sample(t, 0.05, 1.0, 0, dl)
    assert (st["sampled_plus"], st["sampled_minus"]) == (8, 0)
    with pytest.raises(ValueError, match="lengths has 3 values for 10 pairs"):
        length_balanced_sample(t, 1.0, 0.5, 0, [1, 2, 3])


def test_min_total_tops_a_small_aspect_up():
    dl = np.array([3, 0, 1, 7, 2, 2, 9, 4, -5, -1])
    idx, st = length_balanced_indices(dl, 1.0, 0.3, 0, min_total=8)   # p_r·n = 3 → floor 8
    assert len(idx) == 8 and st["target"] == 8 and len(set(idx.tolist())) == 8
    idx, st = length_balanced_indices(dl, 1.0, 0.3, 0, min_total=100)  # floor capped at |D_k|
    assert sorted(idx.tolist()) == list(range(10)) and st["topped_up"] >= 0
    idx, st = length_balanced_indices(dl, 1.0, 0.5, 0)                 # no floor: Eq. 16 as is
    assert len(idx) == 5 and st["topped_up"] == 0
