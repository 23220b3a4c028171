"""What a snippet of Python imports, run in a fresh interpreter (for the "stays light" tests)."""

import subprocess
import sys

HEAVY = ("torch", "trl", "transformers", "ray")


def heavy_modules_loaded(code: str, modules=HEAVY) -> list[str]:
    """The ``modules`` that are in ``sys.modules`` after running ``code`` in a new process."""
    probe = f"{code}\nimport sys\nprint([m for m in {tuple(modules)!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printed list
