"""The select stage of the pipeline: every strategy of ``select.strategies`` on the scores.

``run(cfg, inputs, out, echo, *, dmpo) -> SelectManifest`` (the stage protocol,
:mod:`pdray.pipeline.protocol`): ``cfg`` is the ``select`` section
(:class:`pdray.selection.config.SelectStageConfig`), ``inputs`` the data, score and lossdiff
stages' manifests (lossdiff ``None`` when it did not run). Each strategy reads the scores its
:class:`pdray.selection.selectors.Needs` declares; none is named here. With ``dmpo`` it also
writes PD over all of D (``dmpo_input``: the Δφ estimate the DMPO loss reads).

``pdray select`` and ``pdray report`` run this same stage (:mod:`pdray.cli.select`): a verb
turns its paths into the input manifests and calls :func:`run`.

The stage also writes ``pd.parquet``: the PD of every scored row under the stage's settings
(γ, the scores' length term with the ρ̂_k the selection fits), with its q_k and length term in
the manifest; the report draws these and computes no PD of its own.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pdray.errors import PdrayError
from pdray.io import read_table, write_table
from pdray.length_modes import LengthTerm
from pdray.manifest import StageManifest
from pdray.selection.api import fitted_term, select, write_selection
from pdray.selection.config import SelectStageConfig
from pdray.selection.pd import compute_pd
from pdray.selection.scores import join_logprob_scores, read_logprob_scores, read_scores
from pdray.selection.selectors import NEEDS

PD_FILE = "pd.parquet"
"""The stage's PD of every scored row (``id``, ``pd``): what the report draws."""


class SelectManifest(StageManifest):
    """``selections``: strategy → its folder; ``length``, ``gamma``, ``q`` and ``pd`` (a
    Parquet of ``id``, ``pd``): the PD of the main scores the selection ranked by."""

    strategies: list[str]
    selections: dict[str, str]
    counts: dict[str, int]
    length: LengthTerm
    gamma: float
    q: dict[str, float]
    pd: str | None          # None: PD is not defined on these scores (e.g. a single aspect)
    dmpo_input: str | None = None


def selection_scores(strategy: str, inputs: dict, memo: dict | None = None
                     ) -> tuple[pa.Table, LengthTerm]:
    """The scores a strategy selects on, as its :class:`Needs` declares, with the length term
    the score stage recorded for them: the score set it names (the no-mitigation scores for
    ``no_debias``), joined with the LossDiff / IRM columns for the selectors that read them.
    ``memo`` keeps each score set read once across strategies."""
    needs = NEEDS[strategy]
    key = (needs.scores, needs.logprobs)
    if memo is not None and key in memo:
        return memo[key]
    score = inputs["score"]
    path = getattr(score, needs.scores)
    if not path:
        raise PdrayError(f"{strategy} needs the {needs.scores} of its own reward models "
                         f"(rm.{needs.rm_switch})")
    table = read_scores(path)
    if needs.logprobs:
        ld = inputs.get("lossdiff")   # None: a verb's scores table carries the columns itself
        if ld is not None:
            val = read_table(ld.validation)["id"] if ld.validation else None
            table = join_logprob_scores(table, read_logprob_scores(ld.scores), ld.scores,
                                        held_out=val)
    out = (table, score.length[needs.scores])
    if memo is not None:
        memo[key] = out
    return out


def run(cfg: SelectStageConfig, inputs: dict, out: Path, echo, *,
        dmpo: bool = False, flat: bool = False) -> SelectManifest:
    """Write ``out/<strategy>/`` for each strategy, ``out/pd.parquet`` (and
    ``out/_dmpo_input/`` with ``dmpo``). ``flat``: the one strategy's files go straight into
    ``out`` (``pdray select``'s ``DIR/selected.parquet``)."""
    if flat and len(cfg.strategies) != 1:
        raise PdrayError(f"one strategy per flat selection folder, got {cfg.strategies}")
    data = inputs.get("data")
    pairs = read_table(data.train) if data is not None else None
    dirs, counts, memo = {}, {}, {}

    def one(strategy: str, budget: float, where: Path):
        table, length = selection_scores(strategy, inputs, memo)
        res = select(table, strategy, length=length, budget=budget, gamma=cfg.gamma,
                     fit_length=cfg.fit_length, seed=cfg.seed, pairs=pairs,
                     source=getattr(inputs["score"], NEEDS[strategy].scores),
                     pairs_source=data.train if data is not None else None,
                     aspect_weights=cfg.aspect_weights, **dict(cfg.options.get(strategy, {})))
        write_selection(res, where)
        return res

    for strategy in cfg.strategies:
        where = out if flat else out / strategy
        res = one(strategy, cfg.budget, where)
        dirs[strategy], counts[strategy] = str(where), len(res.selected_ids)
        echo(f"[select] {strategy}: kept {counts[strategy]} of {res.manifest['counts']['in']}")
    scores, length = selection_scores("pd", inputs, memo)
    table, used = fitted_term(scores, length, cfg.fit_length)   # the fit once, as select()'s
    try:
        pdr = compute_pd(table, gamma=cfg.gamma, length=used.with_fit(None),
                         aspect_weights=cfg.aspect_weights)
    except PdrayError as e:   # no strategy ranked by PD either (they would have failed first)
        echo(f"[select] no PD of these scores: {e}")
        pdr = None
    if pdr is not None:
        write_table(pa.table({"id": scores["id"], "pd": pa.array(pdr.pd, pa.float64())}),
                    out / PD_FILE)
    dmpo_input = None
    if dmpo:
        one("pd", 1.0, out / "_dmpo_input")
        dmpo_input = str(out / "_dmpo_input" / "selected.parquet")
    return SelectManifest(dir=str(out), strategies=list(cfg.strategies), selections=dirs,
                          counts=counts, length=used, gamma=cfg.gamma,
                          q=pdr.q if pdr is not None else {},
                          pd=str(out / PD_FILE) if pdr is not None else None,
                          dmpo_input=dmpo_input)
