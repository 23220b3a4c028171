"""The select stage of the pipeline: every strategy of ``select.strategies`` on the scores.

``run(cfg, inputs, out, echo, *, dmpo) -> SelectManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``select`` section
(:class:`pdray.selection.config.SelectStageConfig`), ``inputs`` the data, score and lossdiff
stages' manifests (lossdiff ``None`` when it did not run). Each strategy reads the scores its
:class:`pdray.selection.selectors.Needs` declares; none is named here. With ``dmpo`` it also
writes PD over all of D (``dmpo_input``: the Δφ estimate the DMPO loss reads).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pdray.errors import PdrayError
from pdray.io import read_table
from pdray.lossdiff.logprob_scores import read_logprob_scores
from pdray.manifest import StageManifest
from pdray.selection.api import select, write_selection
from pdray.selection.config import SelectStageConfig
from pdray.selection.scores import join_logprob_scores, length_term, read_scores
from pdray.selection.selectors import NEEDS


class SelectManifest(StageManifest):
    strategies: list[str]
    selections: dict[str, str]
    counts: dict[str, int]
    rho: float
    length_debias: str
    dmpo_input: str | None = None


def selection_scores(strategy: str, inputs: dict, memo: dict | None = None
                     ) -> tuple[pa.Table, float, str]:
    """The scores a strategy selects on, as its :class:`Needs` declares, with ρ and the length
    mode their manifest records (the same as ``pdray select`` reads): the score set it names
    (the no-mitigation scores for ``no_debias``), joined with the LossDiff / IRM columns for
    the selectors that read them. ``memo`` keeps each score set read once across strategies."""
    needs = NEEDS[strategy]
    key = (needs.scores, needs.logprobs)
    if memo is not None and key in memo:
        return memo[key]
    path = getattr(inputs["score"], needs.scores)
    if not path:
        raise PdrayError(f"{strategy} needs the {needs.scores} of its own reward models "
                         f"(rm.{needs.rm_switch})")
    table = read_scores(path)
    if needs.logprobs:
        ld = inputs["lossdiff"]
        val = read_table(ld.validation)["id"] if ld.validation else None
        table = join_logprob_scores(table, read_logprob_scores(ld.scores), ld.scores,
                                    held_out=val)
    rho, mode = length_term(path)
    if memo is not None:
        memo[key] = (table, rho, mode)
    return table, rho, mode


def run(cfg: SelectStageConfig, inputs: dict, out: Path, echo, *,
        dmpo: bool = False) -> SelectManifest:
    """Write ``out/<strategy>/`` for each strategy (and ``out/_dmpo_input/`` with ``dmpo``)."""
    pairs = read_table(inputs["data"].train)
    dirs, counts, memo = {}, {}, {}

    def one(strategy: str, budget: float, where: Path):
        table, rho, mode = selection_scores(strategy, inputs, memo)
        res = select(table, strategy, budget=budget, gamma=cfg.gamma, rho=rho,
                     length_debias=mode, fit_length=cfg.fit_length, seed=cfg.seed, pairs=pairs,
                     **dict(cfg.options.get(strategy, {})))
        write_selection(res, where)
        return res

    for strategy in cfg.strategies:
        res = one(strategy, cfg.budget, out / strategy)
        dirs[strategy], counts[strategy] = str(out / strategy), len(res.selected_ids)
        echo(f"[select] {strategy}: kept {counts[strategy]} of {pairs.num_rows}")
    rho, mode = length_term(inputs["score"].scores)
    dmpo_input = None
    if dmpo:
        one("pd", 1.0, out / "_dmpo_input")
        dmpo_input = str(out / "_dmpo_input" / "selected.parquet")
    return SelectManifest(dir=str(out), strategies=list(cfg.strategies), selections=dirs,
                          counts=counts, rho=rho, length_debias=mode, dmpo_input=dmpo_input)
