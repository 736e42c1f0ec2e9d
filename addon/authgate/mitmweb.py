"""mitmweb's flow list cuts the comment column at 150px (11.0 to 12.x): too
narrow to read which header won. The gate serves mitmweb's own stylesheet with
that one column widened, through tornado's public add_handlers (host rules
match before the app's own routes). Nothing else of mitmweb changes.

The stylesheet is ``static/app.css`` up to 11.1 and ``static/index-<hash>.css``
from 12.0 on; if a release moves it again, the column keeps mitmweb's width and
the gate says so once.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import tornado.web

log = logging.getLogger("authgate")

OVERRIDE = (b"\n/* antigravity auth gate: room for the decision line in the comment column */\n"
            b".flow-table .col-comment{width:50%}\n"
            b".flow-table td.col-comment{text-align:left}\n")
_STYLESHEETS = ("app.css", "index-*.css")  # 11.x, 12.x


class _Stylesheet(tornado.web.RequestHandler):
    def initialize(self, css: bytes) -> None:
        self.css = css

    def get(self) -> None:
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(self.css)


def stylesheet(static: Path) -> Path | None:
    """The stylesheet that holds the flow list's column widths, if any."""
    for pattern in _STYLESHEETS:
        for path in sorted(static.glob(pattern)):
            if b".col-comment" in path.read_bytes():
                return path
    return None


def widen_comment_column(app: tornado.web.Application) -> bool:
    static = Path(app.settings.get("static_path", ""))
    path = stylesheet(static) if static.is_dir() else None
    if path is None:
        log.warning(f"auth gate: no mitmweb stylesheet with the comment column in {static}; "
                    f"the comment column keeps mitmweb's width (150px)")
        return False
    app.add_handlers(r".*", [(f"/static/{re.escape(path.name)}", _Stylesheet,
                              {"css": path.read_bytes() + OVERRIDE})])
    return True
