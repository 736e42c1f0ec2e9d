"""mitmweb (``web_app``, ``web_has_password``, ``stylesheet``): the tornado
application, the token or password that 11.1.2+ asks for, and the stylesheet
that holds the flow list's column widths (``static/app.css`` up to 11.1,
``static/index-<hash>.css`` from 12.0)."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx

_STYLESHEETS = ("app.css", "index-*.css")  # 11.x, 12.x


def web_app():
    """mitmweb's tornado application; None under mitmdump."""
    return getattr(ctx.master, "app", None)


def web_has_password() -> bool:
    """mitmweb 11.1.2+ asks for a token or web_password; 11.0.x has neither."""
    return "web_password" in ctx.options


def stylesheet(static: Path) -> Path | None:
    """The mitmweb stylesheet that holds the flow list's column widths, if any."""
    for pattern in _STYLESHEETS:
        for path in sorted(static.glob(pattern)):
            if b".col-comment" in path.read_bytes():
                return path
    return None
