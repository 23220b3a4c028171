"""The App. B.2 prompt (verbatim), score-line parsing, order-swap combination, caching."""

import pytest

from pdray.eval.cache import ShardCache
from pdray.eval.pairwise import (
    JUDGE_SYSTEM_PROMPT,
    Judge,
    JudgeReply,
    combine,
    judge_both_orders,
    judge_messages,
    parse_scores,
)

PAPER_INSTRUCTION = (
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each "
    "assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
    "better overall performance. Please first output a single line containing only two values "
    "indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a "
    "space. In the subsequent line, please provide a comprehensive explanation of your evaluation, "
    "avoiding any potential length bias and ensuring that the order in which the responses were "
    "presented does not affect your judgment.")


def test_prompt_is_the_papers():
    sys_msg, user = judge_messages("What is 2+2?", "It is 4.", "Five.")
    assert sys_msg == {"role": "system", "content": JUDGE_SYSTEM_PROMPT}
    assert JUDGE_SYSTEM_PROMPT == ("You are a helpful and precise assistant for checking the "
                                   "quality of the answer.")
    text = user["content"]
    assert text.startswith("[Question]\nWhat is 2+2?\n\n[The Start of Assistant 1's Answer]\nIt is 4.")
    assert "[The End of Assistant 1's Answer]" in text
    assert "[The Start of Assistant 2's Answer]\nFive.\n\n[The End of Assistant 2's Answer]" in text
    assert ("We would like to request your feedback on the performance of two AI assistants in "
            "response to the user question displayed above.") in text
    assert text.endswith(PAPER_INSTRUCTION)
    assert text.index("Assistant 1's Answer") < text.index("Assistant 2's Answer")


@pytest.mark.parametrize("text,expected", [
    ("8 7", (8, 7)),
    ("8 7\nAssistant 1 gave 3 examples while Assistant 2 gave 1.", (8, 7)),
    ("Scores: 8 and 7", (8, 7)),
    ("8/10 7/10", (8, 7)),
    ("7.5/10 8/10", (7.5, 8)),
    ("Assistant 1: 8, Assistant 2: 7", (8, 7)),
    ("Assistant 1 receives 9 out of 10, Assistant 2 receives 4 out of 10.", (9, 4)),
    ("**9 6**\n\nBoth are fine.", (9, 6)),
    ("  8,7  ", (8, 7)),
    ("8\t7", (8, 7)),
    ("Scores:\n6 9\nexplanation", (6, 9)),
    ("10 1", (10, 1)),
    ("8.5 7", (8.5, 7)),
    ("garbage", None),
    ("", None),
    (None, None),
    ("8 7 6", None),
    ("11 3", None),
    ("8", None),
    ("Assistant 1 is clearly better because it covers 3 cases in detail.", None),
    ("I cannot compare these answers without more context about the question asked.", None),
])
def test_parse_scores(text, expected):
    got = parse_scores(text)
    assert got == (tuple(float(x) for x in expected) if expected else None)


@pytest.mark.parametrize("first,second,sum_rule,consistent", [
    ((8, 6), (6, 8), "win", "win"),      # better in both orders
    ((8, 6), (7, 7), "win", "win"),      # better in one, equal in the other
    ((6, 8), (8, 6), "loss", "loss"),
    ((7, 7), (8, 7), "loss", "loss"),    # equal, then worse (as Assistant 2: 7 vs 8)
    ((9, 5), (8, 7), "win", "tie"),      # split decision: sum 16 vs 13 -> win; consistent -> tie
    ((8, 7), (8, 7), "tie", "tie"),      # position bias: each order favours Assistant 1
    ((7, 7), (7, 7), "tie", "tie"),
    ((8, 7), (9, 7), "loss", "tie"),     # sums 15 vs 16
    (None, (6, 8), "failed", "failed"),
    ((8, 6), None, "failed", "failed"),
])
def test_combine(first, second, sum_rule, consistent):
    assert combine(first, second, "sum") == sum_rule
    assert combine(first, second, "consistent") == consistent


class ScriptedJudge(Judge):
    """Scores by a fixed table: a judge with a position bias of +1 for Assistant 1."""

    name = "scripted-v1"

    def __init__(self, quality, garble=()):
        self.quality, self.garble, self.calls = quality, set(garble), 0

    def judge(self, requests):
        self.calls += len(requests)
        out = []
        for r in requests:
            if r.response_1 in self.garble or r.response_2 in self.garble:
                out.append(JudgeReply("I refuse to score."))
            else:
                out.append(JudgeReply(f"{self.quality[r.response_1] + 1} "
                                      f"{self.quality[r.response_2]}\nbecause"))
        return out


def test_judge_both_orders_and_cache(tmp_path):
    q = {"good": 8, "bad": 4, "same_a": 6, "same_b": 6, "junk": 5}
    items = [("q1", "good", "bad"), ("q2", "bad", "good"), ("q3", "same_a", "same_b"),
             ("q4", "junk", "good")]
    judge = ScriptedJudge(q, garble={"junk"})
    cache = ShardCache(tmp_path, "judge")
    res = judge_both_orders(judge, items, cache=cache)
    assert [r["outcome"] for r in res] == ["win", "loss", "tie", "failed"]
    r0 = res[0]  # target first: 9 4 ; target second: 5 8
    assert (r0["target_score_1"], r0["baseline_score_1"]) == (9.0, 4.0)
    assert (r0["baseline_score_2"], r0["target_score_2"]) == (5.0, 8.0)
    assert res[3]["error"] == "unparseable judge output" and res[3]["target_score_1"] is None
    assert judge.calls == 8
    again = ScriptedJudge(q, garble={"junk"})
    res2 = judge_both_orders(again, items, cache=ShardCache(tmp_path, "judge"))
    assert again.calls == 0 and res2 == res  # all 8 judgments came from the Parquet cache
    other = ScriptedJudge(q)
    other.name = "scripted-v2"  # another judge never reuses these judgments
    judge_both_orders(other, items[:1], cache=ShardCache(tmp_path, "judge"))
    assert other.calls == 2
