"""Where the dev stack keeps its state: a git-ignored `.devdata/` at the repository root."""

import os
from pathlib import Path


def devdata_dir() -> Path:
    """`$TATAME_DEVDATA`, else `.devdata` in the current directory (`make` runs at the root)."""
    path = Path(os.environ.get("TATAME_DEVDATA", ".devdata")).resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
