"""Cross pseudo-rewarding (paper Eq. 12, 18): every pair through every aspect's reward model."""

from pdray.scoring.backends import HFScorer, Scorer, VLLMScorer, make_scorer, pair_batches
from pdray.scoring.config import ScoreConfig
from pdray.scoring.pipeline import ScoreRun, score_pairs

__all__ = ["HFScorer", "ScoreConfig", "ScoreRun", "Scorer", "VLLMScorer", "make_scorer",
           "pair_batches", "score_pairs"]
