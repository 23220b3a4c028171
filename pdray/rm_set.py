"""Moved to :mod:`pdray.rm.model_set`; this name stays for the importers not yet updated."""

from pdray.rm.model_set import HOLISTIC, MANIFEST, LengthDebias, Mode, RewardModelSet

__all__ = ["HOLISTIC", "MANIFEST", "LengthDebias", "Mode", "RewardModelSet"]
