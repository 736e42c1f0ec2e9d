"""Where the gate's own files are: the user's config.yaml at the repository's root (not tracked
by git: it holds the generated key and the user's edits) and the shipped defaults it is made
from on first start (addon/config.default.yaml, tracked), as the original writes its
gui_config.json from its defaults on first start."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
USER_CONFIG = REPO / "config.yaml"
TEMPLATE = REPO / "addon" / "config.default.yaml"
