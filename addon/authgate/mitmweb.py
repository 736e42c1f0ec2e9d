"""mitmweb 11.0.2's flow list cuts the comment column at 150px: too narrow to
read which header won. The gate serves mitmweb's own stylesheet with that one
column widened, through tornado's public add_handlers (host rules match before
the app's own routes). Nothing else of mitmweb changes.
"""

from __future__ import annotations

from pathlib import Path

import tornado.web

OVERRIDE = (b"\n/* antigravity auth gate: room for the decision line in the comment column */\n"
            b".flow-table .col-comment{width:50%}\n"
            b".flow-table td.col-comment{text-align:left}\n")


class _Stylesheet(tornado.web.RequestHandler):
    def initialize(self, css: bytes) -> None:
        self.css = css

    def get(self) -> None:
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(self.css)


def widen_comment_column(app: tornado.web.Application) -> None:
    css = Path(app.settings["static_path"], "app.css").read_bytes() + OVERRIDE
    app.add_handlers(r".*", [(r"/static/app\.css", _Stylesheet, {"css": css})])
