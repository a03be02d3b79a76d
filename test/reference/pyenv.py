"""Finds the Python that holds the reference's dependencies: a .venv at the repository root when there is one."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def use_repo_venv(script: str):
    """Re-executes `script` with the repository's .venv interpreter unless already running in it.

    scripts/setup.sh installs jax and numpy system-wide; a developer who keeps
    them in /repo/.venv instead runs the same plain `python3 test/reference/...`.
    """
    venv = REPO / ".venv"
    python = venv / "bin" / "python3"
    if not python.exists() or os.environ.get("PIPEC_REFERENCE_IN_VENV"):
        return
    if Path(sys.prefix).resolve() == venv.resolve():
        return
    os.environ["PIPEC_REFERENCE_IN_VENV"] = "1"
    os.execv(str(python), [str(python), str(script), *sys.argv[1:]])


def require_modules():
    """Exits with a clear message when jax or numpy is missing."""
    missing = []
    for name in ("numpy", "jax"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        sys.exit(f"test/reference: Python modules {', '.join(missing)} are missing for {sys.executable}; "
                 "run scripts/setup.sh (or install them into .venv at the repository root)")
