"""The LossDiff actor's rows: the shared TRL-exact log-probs (pdray.align.logprobs) of the three
models, LossDiff and IRM by their formulas, and failures recorded per row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from pdray.align.logprobs import encode_pair, load_causal_lm
from pdray.lossdiff import LossDiffConfig
from pdray.lossdiff.logprob_actor import LogProbActor, encode_rows

PROMPTS = ["How do I bake bread at home?", "What is the capital of France?", "Say hi."]
RESPONSES = ["Mix flour, water, yeast and salt, knead, let it rise, and bake.", "Paris.",
             "Hi! Here is a detailed, step-by-step answer with examples and sources."]


def direct_logp(model, enc) -> float:
    """One unpadded sequence: Σ log_softmax (float64) at its completion tokens."""
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([enc.ids])).logits[0].double(), -1)
    return float(sum(lp[t - 1, enc.ids[t]] for t in range(enc.n_prompt, len(enc.ids))))


@pytest.fixture(scope="module")
def tiny_aux(tmp_path_factory):
    from pdray.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("ld") / "aux", seed=1)


def test_encode_rows_records_unscorable_rows(tiny_lm):
    _, tok = load_causal_lm(str(tiny_lm))
    errors = [None, "field 'chosen': empty text", None]
    enc = encode_rows(tok, ["Hi.", "x", "word " * 60], ["Hello!", "", "yes"], ["Go.", "y", "no"],
                      40, errors)
    assert enc[0] == encode_pair(tok, "Hi.", "Hello!", "Go.", 40)
    assert enc[1] is None and errors[1] == "field 'chosen': empty text"  # kept as it was
    assert enc[2] is None and errors[2].startswith("the prompt fills max_length=40 tokens")
    assert errors[0] is None


def test_actor_rows_match_direct_and_record_failures(tiny_lm, tiny_aux):
    cfg = LossDiffConfig(beta=0.5, batch_tokens=64, max_length=24)
    actor = LogProbActor({"policy": str(tiny_lm), "ref": str(tiny_lm), "aux": str(tiny_aux)},
                         cfg.model_dump_json())
    batch = pa.table({"id": ["p0", "p1", "bad", "long"], "aspect": ["h", "s", "h", "s"],
                      "prompt": PROMPTS[:2] + ["x", "word " * 60],
                      "chosen": RESPONSES[:2] + ["", "yes"],
                      "rejected": RESPONSES[1:3] + ["y", "no"]})
    out = actor(batch)
    assert out.num_rows == 4  # the bad rows are kept, with their errors
    assert out["_error"].to_pylist()[:2] == [None, None]
    assert out["_error"][2].as_py() == "field 'chosen': empty text"
    assert "max_length=24" in out["_error"][3].as_py()
    assert np.isnan(out["irm"][3].as_py()) and np.isnan(out["policy_chosen_logp"][3].as_py())
    m, tok = load_causal_lm(str(tiny_lm))
    a, _ = load_causal_lm(str(tiny_aux))
    # max_length 24 cuts the first pair's chosen answer: the kept tokens are TRL's
    c0, _ = encode_pair(tok, PROMPTS[0], RESPONSES[0], RESPONSES[1], 24)
    assert len(c0.ids) == 24 and len(encode_pair(tok, PROMPTS[0], RESPONSES[0], RESPONSES[1],
                                                 10_000)[0].ids) > 24
    for i in range(2):
        ec, er = encode_pair(tok, PROMPTS[i], RESPONSES[i], RESPONSES[i + 1], 24)
        pc, pr = direct_logp(m, ec), direct_logp(m, er)
        ac, ar = direct_logp(a, ec), direct_logp(a, er)  # same tokenizer: same encoding
        row = out.slice(i, 1).to_pylist()[0]
        assert row["policy_chosen_logp"] == pytest.approx(pc, rel=1e-5)
        assert row["ref_rejected_logp"] == pytest.approx(pr, rel=1e-5)
        assert row["aux_chosen_logp"] == pytest.approx(ac, rel=1e-5)
        assert row["aux_rejected_logp"] == pytest.approx(ar, rel=1e-5)
        assert abs(ac - pc) > 1e-3  # the auxiliary model really is another model
        # policy = reference here: IRM is 0 and ℓ_DPO(θ) = ln 2
        assert row["irm"] == pytest.approx(0.0, abs=1e-9)
        aux_loss = np.logaddexp(0, -0.5 * ((ac - pc) - (ar - pr)))
        assert row["lossdiff"] == pytest.approx(np.log(2) - aux_loss, abs=1e-4)


def test_forward_failure_is_retried_row_by_row(tiny_lm):
    cfg = LossDiffConfig(beta=0.1, batch_tokens=4096, max_length=64)
    actor = LogProbActor({"policy": str(tiny_lm), "ref": str(tiny_lm), "aux": str(tiny_lm)},
                         cfg.model_dump_json())
    batch = pa.table({"id": ["a", "b"], "aspect": ["h", "h"], "prompt": PROMPTS[:2],
                      "chosen": RESPONSES[:2], "rejected": RESPONSES[1:3]})
    good = actor(batch)
    real = actor.models["aux"].forward

    def flaky(*args, input_ids=None, **kw):  # a forward of both pairs (4 sequences) fails
        if input_ids.shape[0] > 2:
            raise RuntimeError("boom")
        return real(*args, input_ids=input_ids, **kw)

    actor.models["aux"].forward = flaky
    again = actor(batch)
    assert again["_error"].to_pylist() == [None, None]  # the one-pair retries succeed
    assert again["lossdiff"].to_pylist() == pytest.approx(good["lossdiff"].to_pylist(), rel=1e-6)

    def broken(*args, **kw):
        raise RuntimeError("boom")

    actor.models["aux"].forward = broken
    assert actor(batch)["_error"].to_pylist() == ["RuntimeError: boom"] * 2
