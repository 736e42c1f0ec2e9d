"""Content views (``add_contentview``, ``remove_contentview``): 11.x
``contentviews.View`` (styled lines), 12.x the ``Contentview`` protocol (text,
no way to remove one); mitmweb's @focus (``focus``)."""

from __future__ import annotations

from mitmproxy import contentviews, ctx

from authgate.mitmproxy_compat.web import web_app


def add_contentview(name: str, render, priority):
    """Register a content view. render(data, flow, message) -> (description,
    [(style, text) per line]); priority(data, flow, message) -> float."""
    if hasattr(contentviews, "registry"):  # 12.x: the Contentview protocol, text out
        class View(contentviews.Contentview):
            syntax_highlight = "none"

            @property
            def name(self) -> str:
                return name

            def prettify(self, data, metadata) -> str:
                return "\n".join(text for _, text in render(data, metadata.flow, metadata.http_message)[1])

            def render_priority(self, data, metadata) -> float:
                return priority(data, metadata.flow, metadata.http_message)
    else:  # 11.x: View, styled lines out; a second one of a name (a script reload) replaces the first
        class View(contentviews.View):
            def __call__(self, data, *, flow=None, http_message=None, **unknown):
                description, lines = render(data, flow, http_message)
                return description, iter([[line] for line in lines])

            def render_priority(self, data, *, flow=None, http_message=None, **unknown) -> float:
                return priority(data, flow, http_message)

        View.name = name
        for old in [v for v in contentviews.views if v.name == name]:
            contentviews.remove(old)
    view = View()
    contentviews.add(view)
    return view


def remove_contentview(view) -> None:
    if hasattr(contentviews, "registry"):  # 12.x has no public way to remove one
        getattr(contentviews.registry, "_by_name", {}).pop(view.name.lower(), None)
    elif view in contentviews.views:
        contentviews.remove(view)


def focus(flow) -> None:
    """In mitmweb, make `flow` the one @focus names (mitmweb's focus does not follow the flow opened)."""
    view = ctx.master.addons.get("view") if web_app() else None
    if view is not None and flow in view and view.focus.flow is not flow:
        view.focus.flow = flow
