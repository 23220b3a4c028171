import math

import pytest
import torch

from pdray.align import dmpo_loss, dpo_margin, sequence_logprobs
from pdray.align.dmpo import DMPOConfig, DMPOTrainer
from pdray.align.logprobs import prompt_and_full_ids


def test_dmpo_hand_computed():
    # M = 0.1·((−10 + 11) − (−12 + 11)) = 0.2; κ·M + PD = 2·0.2 − 0.5 = −0.1
    t = lambda v: torch.tensor([v])
    loss = dmpo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), t(-0.5), beta=0.1, kappa=2)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(0.1)), rel=1e-6)
    # κ = 1 and PD = 0: exactly DPO's −log σ(β·Δ)
    d = dmpo_loss(t(-10.0), t(-12.0), t(-11.0), t(-11.0), t(0.0), beta=0.1, kappa=1)
    assert d.item() == pytest.approx(-math.log(1 / (1 + math.exp(-0.2))), rel=1e-6)
    assert dpo_margin(t(-10.0), t(-12.0), t(-11.0), t(-11.0), 0.1).item() == pytest.approx(0.2)


def test_sequence_logprobs_direct(tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    p, f = prompt_and_full_ids(tok, "What is 2+2?", "four")
    assert f[: len(p)] == p
    with torch.no_grad():
        logits = model(torch.tensor([f])).logits[0]
        want = sum(torch.log_softmax(logits[i - 1], -1)[f[i]].item() for i in range(len(p), len(f)))
        got = sequence_logprobs(model, tok, ["What is 2+2?", "x"], ["four", "a longer answer"])
    assert got[0].item() == pytest.approx(want, rel=1e-5)


def test_dmpo_trainer_loss_and_gradient_match_direct_formula(tiny_lm, tmp_path):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    prompts, chosen, rejected, pd = (["Tell me about bread.", "Is water wet?"],
                                     ["Bread is baked from flour.", "Yes it is."],
                                     ["No.", "Water is a dry thing you know."], [-0.7, 0.4])
    ds = datasets.Dataset.from_dict({
        "prompt": [[{"role": "user", "content": x}] for x in prompts],
        "chosen": [[{"role": "assistant", "content": y}] for y in chosen],
        "rejected": [[{"role": "assistant", "content": y}] for y in rejected], "pd": pd})
    args = DMPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, use_cpu=True,
                      bf16=False, beta=0.1, report_to="none", max_length=128, kappa=3)
    tr = DMPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(tr.get_train_dataloader()))
    model.train()
    model.zero_grad()
    loss = tr.compute_loss(model, batch)
    loss.backward()
    g_trainer = model.lm_head.weight.grad.clone()
    model.zero_grad()
    ref = tr.ref_model
    pc = sequence_logprobs(model, tok, prompts, chosen, max_length=128)
    pr = sequence_logprobs(model, tok, prompts, rejected, max_length=128)
    with torch.no_grad():
        rc = sequence_logprobs(ref, tok, prompts, chosen, max_length=128)
        rr = sequence_logprobs(ref, tok, prompts, rejected, max_length=128)
    direct = dmpo_loss(pc, pr, rc, rr, torch.tensor(pd), beta=0.1, kappa=3).mean()
    direct.backward()
    assert loss.item() == pytest.approx(direct.item(), rel=1e-5)
    torch.testing.assert_close(g_trainer, model.lm_head.weight.grad, rtol=1e-4, atol=1e-7)


def test_dmpo_trainer_with_lora_uses_adapter_free_reference(tiny_lm, tmp_path):
    """LoRA, no ref copy: the reference is the model with its adapter off. A fresh adapter (B = 0)
    leaves the policy equal to the reference, so M_θ = 0 and the loss is mean(−log σ(PD))."""
    import datasets
    from peft import LoraConfig, TaskType
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    pd = [-1.5, 0.25]
    ds = datasets.Dataset.from_dict({
        "prompt": [[{"role": "user", "content": x}] for x in ("Hi there.", "Name a fruit.")],
        "chosen": [[{"role": "assistant", "content": y}] for y in ("Hello!", "Apple.")],
        "rejected": [[{"role": "assistant", "content": y}] for y in ("Go away.", "A rock.")],
        "pd": pd})
    args = DMPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, use_cpu=True,
                      bf16=False, beta=0.1, report_to="none", max_length=64, kappa=3)
    tr = DMPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_lm), args=args,
                     train_dataset=ds, processing_class=tok,
                     peft_config=LoraConfig(task_type=TaskType.CAUSAL_LM, r=4,
                                            target_modules=["q_proj", "v_proj"]))
    assert tr.ref_model is None
    batch = next(iter(tr.get_train_dataloader()))
    loss = tr.compute_loss(tr.model, batch)
    want = -torch.nn.functional.logsigmoid(torch.tensor(pd)).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    loss.backward()  # the adapter gets gradients through κ·M_θ
    grads = [p.grad for n, p in tr.model.named_parameters() if "lora_" in n and p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
