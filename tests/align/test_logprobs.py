"""The shared log-prob implementation (pdray.align.logprobs) against TRL's DPOTrainer and a
direct torch computation: same tokens, same numbers, in evaluation, DMPO and LossDiff."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from pdray.align.data import to_dpo_rows
from pdray.align.logprobs import (
    encode,
    encode_pair,
    has_completion,
    logprobs_of_encoded,
    pad_id_of,
    pair_logprobs,
    sequence_logprobs,
)
from tests.align.lm_helpers import perturbed_copy

# the last pair's prompt ends inside a word the chosen answer completes ("f" + "ox" -> "fox"),
# so its tokenised prompt is not a prefix of prompt+chosen: TRL starts the completion earlier
PROMPTS = ["How do I bake bread at home?", "What is the capital of France?",
           "The quick brown f"]
CHOSEN = ["Mix flour, water, yeast and salt, knead, let it rise, and bake.", "Paris.",
          "ox jumps over the lazy dog."]
REJECTED = ["I cannot help with that request.", "The capital of France is Berlin, I think.",
            " and more."]


@pytest.fixture(scope="module")
def toks(tiny_lm):
    """{'chat': the tiny tokenizer with its chat template, 'plain': the same without one}."""
    from transformers import AutoTokenizer

    chat = AutoTokenizer.from_pretrained(tiny_lm)
    plain = AutoTokenizer.from_pretrained(tiny_lm)
    plain.chat_template = None
    return {"chat": chat, "plain": plain}


@pytest.fixture(scope="module")
def model(tiny_lm):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_lm).eval()


def trl_trainer(tiny_lm, tok, prompts, chosen, rejected, max_length, out):
    """TRL's DPOTrainer on the rows pdray.align gives it (to_dpo_rows), on the tiny model."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    table = pa.table({"prompt": prompts, "chosen": chosen, "rejected": rejected})
    args = DPOConfig(output_dir=str(out), per_device_train_batch_size=len(prompts), use_cpu=True,
                     bf16=False, report_to="none", max_length=max_length, beta=0.1)
    return DPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_lm), args=args,
                      train_dataset=datasets.Dataset.from_dict(to_dpo_rows(table, tok)),
                      processing_class=tok)


def collated_rows(trainer) -> list[tuple[list[int], list[int]]]:
    """(input ids, completion mask) of every unpadded row of TRL's collated batch."""
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    out = []
    for ids, att, comp in zip(batch["input_ids"], batch["attention_mask"],
                              batch["completion_mask"]):
        n = int(att.sum())
        out.append((ids[:n].tolist(), comp[:n].tolist()))
    return out


def direct_logp(model, enc) -> float:
    """Σ log_softmax over the completion tokens of one unpadded sequence, in float64."""
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([enc.ids])).logits[0].double(), -1)
    return float(sum(lp[t - 1, enc.ids[t]] for t in range(max(1, enc.n_prompt), len(enc.ids))))


@pytest.mark.parametrize("kind", ["chat", "plain"])
def test_encoding_equals_trl_dpo_trainer(tiny_lm, toks, tmp_path, kind):
    tok = toks[kind]
    tr = trl_trainer(tiny_lm, tok, PROMPTS, CHOSEN, REJECTED, 512, tmp_path)
    rows = collated_rows(tr)
    ours = [encode_pair(tok, p, c, r, 512) for p, c, r in zip(PROMPTS, CHOSEN, REJECTED)]
    assert [(e.ids, e.completion_mask) for e, _ in ours] == rows[:3]  # chosen first
    assert [(e.ids, e.completion_mask) for _, e in ours] == rows[3:]
    c, r = ours[0]
    if kind == "plain":  # TRL appends EOS to plain-text answers, the template ends chat turns
        assert c.ids[-1] == r.ids[-1] == tok.eos_token_id
        assert tok.decode(c.ids[c.n_prompt:]) == CHOSEN[0] + tok.eos_token
    else:
        assert tok.decode(c.ids[c.n_prompt:]) == CHOSEN[0] + "<|end|>\n"
    # the merged boundary: the prompt keeps fewer tokens than it has alone, for both answers
    c2, r2 = ours[2]
    n_alone = len(tok(PROMPTS[2])["input_ids"] if kind == "plain" else tok.apply_chat_template(
        [{"role": "user", "content": PROMPTS[2]}], add_generation_prompt=True,
        return_dict=True)["input_ids"])
    if kind == "plain":
        assert c2.n_prompt == r2.n_prompt < n_alone
        assert c2.n_prompt < encode(tok, PROMPTS[2], REJECTED[2], 512).n_prompt
    else:
        assert c2.n_prompt == r2.n_prompt == n_alone


@pytest.mark.parametrize("kind", ["chat", "plain"])
def test_logprobs_equal_direct_and_trl(tiny_lm, toks, model, tmp_path, kind):
    tok = toks[kind]
    pairs = [encode_pair(tok, p, c, r, 512) for p, c, r in zip(PROMPTS, CHOSEN, REJECTED)]
    want_c = [direct_logp(model, c) for c, _ in pairs]
    want_r = [direct_logp(model, r) for _, r in pairs]
    assert all(w < -1.0 for w in want_c + want_r)
    with torch.no_grad():
        for bt in (16, 8192):  # one row per batch (with padding) or all rows in one batch
            lc, lr = pair_logprobs(model, pairs, pad_id=pad_id_of(tok), batch_tokens=bt)
            torch.testing.assert_close(lc.double(), torch.tensor(want_c, dtype=torch.float64),
                                       rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lr.double(), torch.tensor(want_r, dtype=torch.float64),
                                       rtol=1e-5, atol=1e-5)
        # TRL's own log-probs (fused LM head) on its own collated batch are the same numbers
        tr = trl_trainer(tiny_lm, tok, PROMPTS, CHOSEN, REJECTED, 512, tmp_path)
        ds = tr.train_dataset
        rc, rr = tr.compute_ref_log_probs(tr.ref_model, tr.data_collator([ds[i] for i in
                                                                          range(len(ds))]))
    torch.testing.assert_close(rc.double(), torch.tensor(want_c, dtype=torch.float64),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rr.double(), torch.tensor(want_r, dtype=torch.float64),
                               rtol=1e-4, atol=1e-4)


def test_sequence_logprobs_is_differentiable_and_order_preserving(toks, model):
    tok = toks["chat"]
    got = sequence_logprobs(model, tok, PROMPTS[:2], CHOSEN[:2], batch_tokens=16)
    assert got.requires_grad and got.shape == (2,)
    want = [direct_logp(model, encode(tok, p, c, 1024)) for p, c in zip(PROMPTS, CHOSEN[:2])]
    assert got.detach().double().tolist() == pytest.approx(want, rel=1e-5)
    got.sum().backward()
    assert model.lm_head.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_truncation_long_prompt_follows_trl(tiny_lm, toks, model, tmp_path):
    tok = toks["chat"]
    prompts, chosen, rejected = ["word " * 10, "word " * 60], ["answer " * 50, "yes"], \
        ["no " * 30, "no"]
    L = encode(tok, prompts[0], "x", 10_000).n_prompt + 16  # room for 16 answer tokens
    assert encode(tok, prompts[1], "x", 10_000).n_prompt > L
    enc = [encode_pair(tok, p, c, r, L) for p, c, r in zip(prompts, chosen, rejected)]
    full = [encode_pair(tok, p, c, r, 10_000) for p, c, r in zip(prompts, chosen, rejected)]
    c, r = enc[0]
    # keep_start: the whole prompt, then the start of each answer, L tokens in all
    assert len(c.ids) == len(r.ids) == L and c.n_prompt == full[0][0].n_prompt == L - 16
    assert c.ids == full[0][0].ids[:L] and r.ids == full[0][1].ids[:L]
    assert len(full[0][0].ids) > L + 30 and has_completion(c) and has_completion(r)
    # a prompt that fills max_length leaves no completion token: TRL drops the pair
    assert enc[1][0].n_prompt == len(enc[1][0].ids) == L
    assert not has_completion(enc[1][0]) and not has_completion(enc[1][1])
    tr = trl_trainer(tiny_lm, tok, prompts, chosen, rejected, L, tmp_path)
    assert len(tr.train_dataset) == 1
    assert collated_rows(tr) == [(c.ids, c.completion_mask), (r.ids, r.completion_mask)]
    with torch.no_grad():  # a truncated answer scores only its kept tokens
        lp = logprobs_of_encoded(model, [c], pad_id=pad_id_of(tok))
    assert lp.item() == pytest.approx(direct_logp(model, c), rel=1e-5)
    assert lp.item() > direct_logp(model, full[0][0]) + 1.0  # 16 of 50+ negative terms


def test_eval_and_lossdiff_actor_give_identical_values(tiny_lm, toks, tmp_path):
    from pdray.align.evaluate import implicit_margins
    from pdray.lossdiff import LossDiffConfig
    from pdray.lossdiff.logprob_actor import LogProbActor

    perturbed_copy(tiny_lm, tmp_path / "pol", toks["chat"])
    # max_length 24 truncates the first chosen answer: both sides must cut it the same way
    cfg = LossDiffConfig(beta=0.5, batch_tokens=64, max_length=24)
    actor = LogProbActor({"policy": str(tmp_path / "pol"), "ref": str(tiny_lm),
                          "aux": str(tiny_lm)}, cfg.model_dump_json())
    batch = pa.table({"id": ["a", "b", "c", "long"], "aspect": ["h", "h", "s", "s"],
                      "prompt": PROMPTS + ["word " * 30], "chosen": CHOSEN + ["yes"],
                      "rejected": REJECTED + ["no"]})
    rows = actor(batch).to_pylist()
    margin = implicit_margins(tmp_path / "pol", tiny_lm, batch, beta=0.5, max_length=24,
                              batch_tokens=4096)
    assert len(encode(toks["chat"], PROMPTS[0], CHOSEN[0], 10_000).ids) > 24
    assert [r["_error"] for r in rows[:3]] == [None] * 3
    assert [r["irm"] for r in rows[:3]] == pytest.approx(margin[:3].tolist(), rel=1e-6,
                                                        abs=1e-9)
    assert min(abs(r["irm"]) for r in rows[:3]) > 1e-3  # the perturbed policy moved
    # the prompt that fills max_length: no score on either side (TRL never trains on it)
    assert "max_length" in rows[3]["_error"] and margin[3] != margin[3]
