"""Eq. 11 / 17 losses and the learned length mode: hand-computed values, the
re-parameterisation identity, value and gradient of the learned loss against the direct formula,
and that pdray's RewardTrainer (TRL's, subclassed) computes exactly that loss."""

import math

import numpy as np
import pytest
import torch

from pdray.rm import bt_loss, margin_for
from pdray.rm.losses import fit_length_coef, length_scale


def nls(x):  # −log σ(x)
    return math.log1p(math.exp(-x))


def test_bt_loss_hand_computed():
    rw, rl = torch.tensor([1.0, 0.2]), torch.tensor([0.5, 0.7])
    dl = torch.tensor([100.0, -40.0])
    # plain BT (Eq. 11): Δr = 0.5, −0.5
    assert bt_loss(rw, rl, None, "none").item() == pytest.approx((nls(0.5) + nls(-0.5)) / 2)
    # penalty (Eq. 17), ρ = 0.01: Δr − ρΔlen = 0.5 − 1 = −0.5, −0.5 + 0.4 = −0.1
    m = torch.tensor(margin_for(dl, 0.01, "penalty"))
    assert bt_loss(rw, rl, m, "penalty").item() == pytest.approx((nls(-0.5) + nls(-0.1)) / 2)
    # product of experts: Δr + ρΔlen = 1.5, −0.9
    assert bt_loss(rw, rl, m, "poe").item() == pytest.approx((nls(1.5) + nls(-0.9)) / 2)
    assert bt_loss(rw, rl, torch.zeros(2), "none").item() == pytest.approx(
        bt_loss(rw, rl, None, "none").item())
    # learned, margin = Δlen/s with s = 100, w = 0.5: Δr + 0.5·(1, −0.4) = 1.0, −0.7
    ml = torch.tensor(margin_for(dl, 0.0, "learned", scale=100.0))
    assert bt_loss(rw, rl, ml, "learned", torch.tensor(0.5)).item() == pytest.approx(
        (nls(1.0) + nls(-0.7)) / 2)
    with pytest.raises(ValueError, match="length_debias"):
        margin_for([1], 0.1, "bogus")


def test_penalty_is_bt_on_length_shifted_reward():
    # METHOD.md: with an unconstrained r, Eq. 17 is plain BT on r' = r − ρ·len(y)
    g = torch.Generator().manual_seed(0)
    rw, rl = torch.randn(64, generator=g), torch.randn(64, generator=g)
    lw, ll = torch.randint(1, 400, (64,), generator=g).float(), torch.randint(1, 400, (64,), generator=g).float()
    rho = 0.003
    assert bt_loss(rw, rl, rho * (lw - ll), "penalty").item() == pytest.approx(
        bt_loss(rw - rho * lw, rl - rho * ll, None, "none").item(), rel=1e-6)
    assert bt_loss(rw, rl, rho * (lw - ll), "poe").item() == pytest.approx(
        bt_loss(rw + rho * lw, rl + rho * ll, None, "none").item(), rel=1e-6)


def test_learned_length_loss_value_and_gradient_match_the_direct_formula():
    g = torch.Generator().manual_seed(1)
    rw = torch.randn(16, generator=g, requires_grad=True)
    rl = torch.randn(16, generator=g, requires_grad=True)
    dlen = torch.randint(-300, 300, (16,), generator=g).double().numpy()
    s = length_scale(dlen)
    x = torch.tensor(margin_for(dlen, 0.0, "learned", s), dtype=torch.float32)
    w = torch.tensor(0.7, requires_grad=True)
    loss = bt_loss(rw, rl, x, "learned", w)
    loss.backward()
    # direct: L = mean −log σ(Δr + w·x); ∂L/∂w = mean −(1 − σ(z))·x; ∂L/∂r_w = −(1 − σ(z))/n
    z = (rw - rl + w * x).detach().double()
    sig = 1 / (1 + torch.exp(-z))
    assert loss.item() == pytest.approx(float(torch.mean(torch.log1p(torch.exp(-z)))), rel=1e-6)
    assert w.grad.item() == pytest.approx(float(torch.mean(-(1 - sig) * x.double())), rel=1e-5)
    assert torch.allclose(rw.grad.double(), -(1 - sig) / 16, atol=1e-7)
    assert torch.allclose(rl.grad.double(), (1 - sig) / 16, atol=1e-7)


def test_length_coefficient_starts_at_the_length_only_mle():
    rng = np.random.default_rng(0)
    x = rng.normal(size=4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-1.5 * x))   # chosen longer with P = σ(1.5·x)
    feature = np.where(y, x, -x)                          # orient each pair chosen − rejected
    assert fit_length_coef(feature) == pytest.approx(1.5, abs=0.12)
    assert fit_length_coef(np.zeros(10)) == 0.0
    assert fit_length_coef(np.abs(x)) == 20.0            # separable by length: bounded


@pytest.mark.parametrize("debias", ["penalty", "poe", "none", "learned"])
def test_reward_trainer_loss_is_eq17(tiny_rm, tmp_path, debias):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer
    from trl.trainer.reward_trainer import DataCollatorForPreference

    from pdray.models.reward import install_forward
    from pdray.rm.losses import LENGTH_COEF, PdrayRewardTrainer, add_length_coef

    tok = AutoTokenizer.from_pretrained(tiny_rm)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_rm, num_labels=1)
    if debias == "learned":
        add_length_coef(model, [0.3])
        install_forward(model, "native", LENGTH_COEF)
    dlen = np.array([30.0, -12.0, 5.0])
    rows = {"chosen_ids": [[5, 6, 7, 8], [9, 10], [11, 12, 13]],
            "rejected_ids": [[5, 6], [9, 10, 14, 15], [16]],
            "margin": margin_for(dlen, 0.05, debias).tolist()}
    args = RewardConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", max_length=None,
                        per_device_train_batch_size=3)
    tr = PdrayRewardTrainer(model=model, args=args, length_debias=debias,
                            train_dataset=datasets.Dataset.from_dict(rows), processing_class=tok)
    batch = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(
        [{k: rows[k][i] for k in rows} for i in range(3)])
    model.eval()
    with torch.no_grad():
        loss = tr.compute_loss(model, dict(batch))
        r = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    want = bt_loss(r[:3], r[3:], torch.tensor(margin_for(dlen, 0.05, debias), dtype=torch.float32),
                   debias, torch.tensor(0.3))
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    if debias == "penalty":  # the same as TRL's own RewardTrainer with margin = ρ·Δlen
        trl = RewardTrainer(model=model, args=args, processing_class=tok,
                            train_dataset=datasets.Dataset.from_dict(rows))
        with torch.no_grad():
            assert trl.compute_loss(model, dict(batch)).item() == pytest.approx(loss.item(), rel=1e-6)


def test_pdray_trainer_multi_head_and_learned_length(tmp_path):
    from transformers import TrainingArguments

    from pdray.models.reward import RewardOutput
    from pdray.rm.losses import PdrayRewardTrainer

    class Fixed(torch.nn.Module):  # logits given directly: rows × 2 heads; w per head
        def __init__(self, logits):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([0.5, 2.0]))
            self.logits = logits
            self.config = None

        def forward(self, input_ids=None, attention_mask=None, use_cache=None):
            return RewardOutput(logits=self.logits + 0 * self.w[0], length_coef=self.w * 1.0)

    # two pairs: pair 0 on head 0, pair 1 on head 1; rows = [w0, w1, l0, l1]
    logits = torch.tensor([[2.0, -9.0], [9.0, 0.5], [1.0, 9.0], [-9.0, 1.5]])
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    inputs = {"input_ids": torch.zeros(4, 2, dtype=torch.long), "attention_mask": torch.ones(4, 2),
              "head": torch.tensor([0, 1]), "margin": torch.tensor([0.1, -0.2])}
    tr = PdrayRewardTrainer.__new__(PdrayRewardTrainer)  # compute_loss needs no trainer state
    from collections import defaultdict
    tr._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    tr.model, tr.args = Fixed(logits), args
    tr.length_debias = "penalty"
    loss = tr.compute_loss(tr.model, dict(inputs))
    # head 0: Δr = 2 − 1 = 1, − 0.1; head 1: Δr = 0.5 − 1.5 = −1, + 0.2
    assert loss.item() == pytest.approx((nls(0.9) + nls(-0.8)) / 2)
    tr.length_debias = "learned"
    loss = tr.compute_loss(tr.model, dict(inputs))
    # learned: head 0: 1 + 0.5·0.1 = 1.05; head 1: −1 + 2·(−0.2) = −1.4
    assert loss.item() == pytest.approx((nls(1.05) + nls(-1.4)) / 2)
