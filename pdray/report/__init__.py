"""Selection reports: metrics (CP, conflict rate, Δlen, overlaps) and an HTML page with plots."""

from pdray.report.html import build_report
from pdray.report.metrics import budget_curve, budget_table, selection_metrics

__all__ = ["budget_curve", "budget_table", "build_report", "selection_metrics"]
