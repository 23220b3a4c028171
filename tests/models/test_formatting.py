"""Truncation keeps the response (METHOD.md): the prompt is cut from its left, never the response,
unless the response alone is longer than its share of the budget."""

import pytest

from pdray.models.formatting import encode_reward_inputs, pair_text


@pytest.fixture(scope="module")
def tok():
    from pdray.models.tiny import build_tiny_tokenizer

    return build_tiny_tokenizer()


def test_long_prompt_is_cut_from_the_left_and_the_response_survives(tok):
    prompt = "START " + "blah " * 400 + "final question?"
    chosen, rejected = "Yes, here is the answer.", "No."
    ids, info = encode_reward_inputs(tok, [prompt, prompt], [chosen, rejected], max_length=64)
    assert all(len(x) <= 64 for x in ids)
    text_c, text_r = tok.decode(ids[0]), tok.decode(ids[1])
    assert text_c.rstrip().endswith(pair_text(tok, "x", chosen)[-20:].rstrip())  # response kept
    assert "here is the answer" in text_c and "No." in text_r
    assert "START" not in text_c                                  # the prompt's start is gone
    assert "final question?" in text_c                            # its end stays
    assert ids[0] != ids[1]                                       # the responses still differ
    assert info.prompt_cut == 2 and info.response_cut == 0
    # the tokenizer's own truncation would cut the response away entirely: identical inputs
    plain = tok([pair_text(tok, prompt, y) for y in (chosen, rejected)], truncation=True,
                max_length=64)["input_ids"]
    assert plain[0] == plain[1]


def test_short_inputs_are_untouched_and_long_responses_keep_their_share(tok):
    ids, info = encode_reward_inputs(tok, ["hi"], ["hello there"], max_length=64)
    assert ids[0] == tok(pair_text(tok, "hi", "hello there"))["input_ids"]
    assert info.prompt_cut == 0 and info.response_cut == 0
    prompt = "question " * 50
    long = "word " * 500
    ids, info = encode_reward_inputs(tok, [prompt], [long], max_length=80, response_share=0.75)
    assert len(ids[0]) == 80 and info.response_cut == 1
    assert "question" in tok.decode(ids[0])                      # ≥ 25 % left to the prompt


def test_pairs_identical_after_truncation_are_flagged(tok):
    """Scoring marks (column same_input) the pairs whose two inputs truncation made identical,
    instead of scoring them as a silent 0."""
    from pdray.scoring.backends import encode_pairs

    shared = "word " * 200
    prompts = ["short prompt", "short prompt"]
    chosen = [shared + "the end A", "Yes."]
    rejected = [shared + "the end B", "No."]
    _, _, same = encode_pairs(tok, prompts, chosen, rejected, None, 40, 0.75)
    assert same.tolist() == [True, False]
