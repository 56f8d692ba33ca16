"""Where jaxcolor keeps what it can recompute: ``$JAXCOLOR_CACHE_DIR``, else
``~/.cache/jaxcolor``."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "JAXCOLOR_CACHE_DIR"


def cache_dir(*parts: str) -> Path:
    """The cache folder, or a folder inside it (not created here)."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "jaxcolor", *parts)
