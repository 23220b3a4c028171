"""The tail every benchmark shares: print its table, and with ``--record`` append it to
``benchmarks/RESULTS.md`` (the record of every run, with its date and machine)."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def emit(text: str, record: bool) -> None:
    """Print ``text``; when ``record``, append it (and a blank line) to RESULTS.md."""
    text = text if text.endswith("\n") else text + "\n"
    print(text)
    if record:
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write(text + "\n")
