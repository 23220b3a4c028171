"""The paper's pairwise judging protocol (App. B.2, Fig. B.2): prompt, score parsing, order swap.

Every (prompt, target answer, baseline answer) is judged twice: once with the target as
Assistant 1 and once with it as Assistant 2. The judge must put the two 1-10 scores on its first
line; :func:`parse_scores` reads them robustly and returns ``None`` when it cannot, which is
recorded as a parse failure (counted, excluded from the win score, never turned into a tie).

Combination rule (:func:`combine`), default ``"sum"``: the target's two scores are summed and
compared with the baseline's two; higher = win, lower = loss, equal = tie (FastChat's and
AlpaGasus/Cherry-LLM's practice of summing over both orders, which cancels position bias).
``"consistent"``: win if the target scores higher in both orders, or higher in one and equal in the
other; loss symmetrically; everything else (including a split decision) is a tie.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

JUDGE_SYSTEM_PROMPT = "You are a helpful and precise assistant for checking the quality of the answer."

JUDGE_INSTRUCTION = (
    "We would like to request your feedback on the performance of two AI assistants in response "
    "to the user question displayed above.\n\n"
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each "
    "assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
    "better overall performance. Please first output a single line containing only two values "
    "indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a "
    "space. In the subsequent line, please provide a comprehensive explanation of your evaluation, "
    "avoiding any potential length bias and ensuring that the order in which the responses were "
    "presented does not affect your judgment."
)

JUDGE_USER_TEMPLATE = (
    "[Question]\n{instruction}\n\n"
    "[The Start of Assistant 1's Answer]\n{response_1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{response_2}\n\n[The End of Assistant 2's Answer]\n\n"
    + JUDGE_INSTRUCTION
)

Outcome = Literal["win", "loss", "tie", "failed"]


def judge_messages(instruction: str, response_1: str, response_2: str) -> list[dict]:
    """Chat messages of the App. B.2 judge prompt (system + user)."""
    user = JUDGE_USER_TEMPLATE.format(instruction=instruction, response_1=response_1,
                                      response_2=response_2)
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


_LABEL = re.compile(r"\b(?:assistant|ai|model|response|answer)\s*[#_]?\s*[12]\b", re.IGNORECASE)
_OUT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/\s*10(?:\.0+)?\b|out\s+of\s+10\b)", re.IGNORECASE)
_NUM = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*\d)")


def parse_scores(text: str | None, low: float = 0.0, high: float = 10.0) -> tuple[float, float] | None:
    """The two scores on the judge's first line, or ``None`` when they cannot be read.

    Accepts ``"8 7"``, ``"8, 7"``, ``"Scores: 8 and 7"``, ``"8/10 7/10"``,
    ``"Assistant 1: 8, Assistant 2: 7"``, ``"**8 7**"``, ``"8.5 7"``. A short header line without
    digits (``"Scores:"``) is skipped; the first line with digits must hold exactly two numbers in
    ``[low, high]``; otherwise the output is a parse failure.
    """
    if not text:
        return None
    for line in [ln.strip() for ln in text.strip().splitlines() if ln.strip()][:3]:
        if not re.search(r"\d", line):
            if len(line) <= 40:
                continue  # a header such as "Scores:" or "**Evaluation**"
            return None
        line = _LABEL.sub(" ", line.replace("*", " ").replace("`", " "))
        line = _OUT_OF.sub(r" \1 ", line)
        nums = [float(m) for m in _NUM.findall(line)]
        if len(nums) != 2 or not all(low <= x <= high for x in nums):
            return None
        return nums[0], nums[1]
    return None


def combine(target_first: tuple[float, float] | None, target_second: tuple[float, float] | None,
            rule: Literal["sum", "consistent"] = "sum") -> Outcome:
    """Win/loss/tie of the target from its two judgments (see the module docstring).

    ``target_first`` = (target score, baseline score) with the target as Assistant 1;
    ``target_second`` = (baseline score, target score) with the target as Assistant 2.
    Either judgment unparsed -> ``"failed"``.
    """
    if target_first is None or target_second is None:
        return "failed"
    t1, b1 = target_first
    b2, t2 = target_second
    if rule == "sum":
        t, b = t1 + t2, b1 + b2
        return "win" if t > b else "loss" if t < b else "tie"
    if rule != "consistent":
        raise ValueError(f"unknown combination rule {rule!r}")
    d = [(t1 > b1) - (t1 < b1), (t2 > b2) - (t2 < b2)]
    if min(d) >= 0 and max(d) > 0:
        return "win"
    if max(d) <= 0 and min(d) < 0:
        return "loss"
    return "tie"


@dataclass(frozen=True)
class JudgeRequest:
    """One ordered judgment: ``response_1`` is shown as Assistant 1."""

    instruction: str
    response_1: str
    response_2: str

    def key(self, judge_name: str) -> str:
        h = hashlib.sha256()
        for part in (judge_name, self.instruction, self.response_1, self.response_2):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass
class JudgeReply:
    text: str | None  # the judge's raw output (None when the call failed)
    error: str | None = None


class Judge(ABC):
    """A pairwise judge. ``name`` identifies it in caches (must change when its behaviour does)."""

    name: str = "judge"

    @abstractmethod
    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        """Judge every request (in order); never raise for one bad reply, record it instead."""

    def close(self) -> None:  # release models / connections
        pass


def judge_both_orders(judge: Judge, items: Sequence[tuple[str, str, str]], *, cache=None,
                      rule: Literal["sum", "consistent"] = "sum", batch_size: int = 32,
                      log=None) -> list[dict]:
    """Judge each ``(instruction, target, baseline)`` in both orders and combine.

    Returns one record per item: ``text_1``/``text_2`` (raw judge outputs, target first /
    target second), ``target_score_1``, ``baseline_score_1``, ``target_score_2``,
    ``baseline_score_2`` (None when unparsed), ``error`` and ``outcome``. Judgments are cached
    per (judge name, instruction, ordered answer pair) in ``cache`` (a :class:`ShardCache`).
    """
    reqs: list[JudgeRequest] = []
    for q, t, b in items:
        reqs += [JudgeRequest(q, t, b), JudgeRequest(q, b, t)]
    keys = [r.key(judge.name) for r in reqs]
    have = cache.get_many(keys) if cache is not None else {}
    todo = [i for i, k in enumerate(keys) if k not in have]
    if log:
        log(f"[eval] judge {judge.name}: {len(reqs)} judgments, {len(reqs) - len(todo)} cached")
    for s in range(0, len(todo), batch_size):
        chunk = todo[s:s + batch_size]
        replies = judge.judge([reqs[i] for i in chunk])
        fresh = {keys[i]: {"text": r.text, "error": r.error} for i, r in zip(chunk, replies)}
        # failed calls (network, HTTP) are not cached so a re-run retries them
        if cache is not None:
            cache.put({k: v for k, v in fresh.items() if v["error"] is None})
        have.update(fresh)
        if log:
            log(f"[eval] judged {min(s + batch_size, len(todo))}/{len(todo)}")
    out = []
    for n in range(len(items)):
        r1, r2 = have[keys[2 * n]], have[keys[2 * n + 1]]
        p1, p2 = parse_scores(r1["text"]), parse_scores(r2["text"])
        errs = [e for e in (r1["error"], r2["error"]) if e]
        if not errs and (p1 is None or p2 is None):
            errs.append("unparseable judge output")
        out.append({"text_1": r1["text"], "text_2": r2["text"],
                    "target_score_1": p1[0] if p1 else None,
                    "baseline_score_1": p1[1] if p1 else None,
                    "baseline_score_2": p2[0] if p2 else None,
                    "target_score_2": p2[1] if p2 else None,
                    "error": "; ".join(errs) or None, "outcome": combine(p1, p2, rule)})
    return out
