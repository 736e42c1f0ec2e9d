"""Antigravity Tools' local-proxy auth layer, as a mitmproxy addon.

    mitmdump -s addon/auth.py                      # reads ./config.yaml, serves 127.0.0.1:8045
    mitmdump -s addon/auth.py --set auth_config=other.yaml

This file only adapts flows to the pure pieces beside it (authgate/): the
decision, the settings snapshot and the explanations. See README.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
from pathlib import Path
from typing import Optional

from mitmproxy import command, connection, ctx, exceptions, flow, http

from authgate import explain, listener, mitmweb, upstream_errors
from authgate.decision import KEY_HEADERS, MODES, PROFILES, Decision, RequestView, decide
from authgate.settings import (ConfigError, FileConfig, Overrides, Settings, fingerprint,
                               generate_key, merge, read_config, write_key)

log = logging.getLogger("authgate")

DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / "config.yaml")
DENIED_MARKER = ":no_entry:"
SURPRISE_MARKER = ":warning:"  # shadow mode: the real proxy did not answer as predicted
V4_REJECTED = {"message": "Invalid token. Please check your API key.", "type": "token_rejected",
               "code": "token_rejected"}
V4_VERSION = "4.0.0"
RELOAD_INTERVAL = 1.0  # seconds between config.yaml checks while idle
CORS = {"access-control-allow-origin": "*"}
_KEY_HEADER_NAMES = frozenset(name.lower().encode() for name in KEY_HEADERS)
_OPTIONS = ("auth_config", "auth_mode", "auth_api_key", "auth_allow_lan_access",
            "auth_port", "auth_upstream", "auth_upstream_timeout", "auth_profile", "auth_enforce")


def _json_response(status: int, body: dict, **headers: str) -> http.Response:
    return http.Response.make(status, json.dumps(body).encode(),
                              {"content-type": "application/json", **CORS, **headers})


class AuthGate:
    def __init__(self) -> None:
        self.file: FileConfig | None = None  # last good config.yaml
        self.settings: Settings | None = None  # the snapshot in force
        self.explain = True
        self.lang = "en"
        self.passed = 0
        self.denied = 0
        self._stamp: tuple | None = None  # config.yaml's (mtime, size, inode) when last read
        self._config_path = ""
        self._user_listen: tuple[bool, str, int | None] | None = None
        self._stash: dict[str, tuple[tuple, bytes, bool]] = {}  # flow id -> client's (headers, path), host moved
        # flow id -> the timer that gives up on the upstream's response headers
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watcher: asyncio.Task | None = None
        self._start_failed = False  # a bad config at start: stay inert while mitmproxy exits
        self._start_listener = False  # the gate took mitmproxy's listener start-up over (listener.py)

    # ------------------------------------------------------------ options

    def load(self, loader) -> None:
        upstream_errors.install()
        _answer_lookups_cheaply()
        loader.add_option("auth_config", str, DEFAULT_CONFIG,
                          "The config.yaml to read (proxy.* and upstream.url); edits apply to the next request.")
        loader.add_option("auth_mode", Optional[str], None,
                          "Override proxy.auth_mode: off, strict, all_except_health or auto.",
                          choices=MODES)
        loader.add_option("auth_api_key", Optional[str], None, "Override proxy.api_key.")
        loader.add_option("auth_allow_lan_access", Optional[str], None,
                          "Override proxy.allow_lan_access: true or false.", choices=("true", "false"))
        loader.add_option("auth_port", Optional[int], None, "Override proxy.port (0 picks a free port).")
        loader.add_option("auth_upstream", Optional[str], None, "Override upstream.url.")
        loader.add_option("auth_upstream_timeout", Optional[int], None,
                          "Override upstream.timeout: seconds (1-599) to wait for the upstream's answer "
                          "to begin, then a JSON 504.")
        loader.add_option("auth_explain", bool, True,
                          "Explain each 401 in a JSON body; false gives the original's bare 401.")
        loader.add_option("auth_profile", Optional[str], None,
                          "Override proxy.profile: faq (as the FAQ describes) or v4 (newer releases).",
                          choices=PROFILES)
        loader.add_option("auth_enforce", Optional[str], None,
                          "Override proxy.auth_enforce: false is shadow mode (forward everything unchanged, "
                          "predict the real proxy's decision, flag surprises).", choices=("true", "false"))
        loader.add_option("auth_lang", str, "en",
                          "Language of comments, logs and commands (and of 401 bodies when the client "
                          "sends no usable Accept-Language): " + ", ".join(explain.LANGUAGES),
                          choices=explain.LANGUAGES)
        loader.add_option("auth_web_remote", bool, False,
                          "Allow mitmweb's UI on a non-loopback web_host where mitmweb has no password "
                          "(11.0.x): anyone who reaches it sees every key and can change the auth settings. "
                          "mitmweb 11.1.2+ asks for a token or web_password, and is allowed there.")

    def configure(self, updated: set[str]) -> None:
        if self._start_failed:
            return
        try:
            self._configure(updated)
        except exceptions.OptionsError as e:
            if self.settings is not None:
                raise  # a live change: mitmproxy rolls it back and says why
            # At start: one plain line (mitmdump then exits 1), and never a
            # listener, not even mitmproxy's default open proxy on *:8080.
            self._start_failed = True
            log.error(str(e))
            if not listener.hold_start():
                ctx.options.update(server=False)

    def _configure(self, updated: set[str]) -> None:
        if self._user_listen is None:
            # Flags the user gave explicitly win over config.yaml.
            opts = ctx.options
            self._user_listen = (opts.mode != ["regular"], opts.listen_host, opts.listen_port)
        if "auth_explain" in updated:
            self.explain = ctx.options.auth_explain
        if "auth_lang" in updated:
            if ctx.options.auth_lang not in explain.CATALOGS:
                raise exceptions.OptionsError(f"option auth_lang: {ctx.options.auth_lang!r} is not available. "
                                              f"Fix: use one of {', '.join(explain.CATALOGS)}")
            self.lang = ctx.options.auth_lang
        if updated & {"web_host", "auth_web_remote"} and "web_host" in ctx.options:
            _check_web_host(ctx.options.web_host, ctx.options.auth_web_remote, "web_password" in ctx.options)
        if self.settings is None and "web_columns" in ctx.options and "comment" not in ctx.options.web_columns:
            # The comment column is where each row says which header won and why.
            ctx.options.update(web_columns=[*ctx.options.web_columns, "comment"])
        if self.file is None or "auth_config" in updated:
            path = os.path.abspath(os.path.expanduser(ctx.options.auth_config))
            try:
                file, stamp = self._read(path, self._overrides())
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from None
            self.file, self._stamp, self._config_path = file, stamp, path
            self._install(self._merge(self.file), "loaded")
        elif updated & set(_OPTIONS):
            self._install(self._merge(self.file), "options changed")

    def _overrides(self) -> Overrides:
        opts = ctx.options
        return Overrides(auth_mode=opts.auth_mode, api_key=opts.auth_api_key,
                         allow_lan_access=_tristate("auth_allow_lan_access"),
                         port=opts.auth_port, upstream=opts.auth_upstream,
                         upstream_timeout=opts.auth_upstream_timeout,
                         profile=opts.auth_profile, enforce=_tristate("auth_enforce"))

    def _merge(self, file: FileConfig) -> Settings:
        try:
            return merge(file, self._overrides(), self._config_path)
        except ConfigError as e:
            raise exceptions.OptionsError(str(e)) from None

    def _read(self, path: str, over: Overrides) -> tuple[FileConfig, tuple]:
        """Read config.yaml; a missing api_key is generated once and written back."""
        stamp = _stamp(path)
        file = read_config(path)
        if file.api_key is None and over.api_key is None:
            key = generate_key()
            write_key(path, key)
            log.warning(f"{path}: proxy.api_key was missing; generated {fingerprint(key)} and saved it there")
            stamp = _stamp(path)
            file = read_config(path)
        return file, stamp

    def _install(self, new: Settings, why: str) -> None:
        old, self.settings = self.settings, new
        if old != new:
            log.info(f"auth gate ({why}): {describe(new)}")
        self._bind()

    def _bind(self) -> None:
        """Serve on the configured port and host; a change rebinds the listener."""
        user_mode, user_host, user_port = self._user_listen
        if user_mode:
            return
        s = self.settings
        host = user_host or s.listen_host
        port = user_port if user_port is not None else s.port
        # Reverse mode: never an open forward proxy. Lazy: /healthz and 401s
        # answer even when the upstream is down.
        spec = f"reverse:{s.upstream.origin}@{host}:{port}"
        if ctx.options.mode != [spec]:
            # listen_host/port too, so mitmweb's status bar shows the real address
            ctx.options.update(mode=[spec], connection_strategy="lazy", listen_host=host, listen_port=port)
        if not self._start_listener:
            self._start_listener = listener.hold_start()

    # ------------------------------------------------------------ hot reload

    async def running(self) -> None:
        if self._start_failed:
            return
        if self._start_listener:
            await listener.start()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        if app := getattr(ctx.master, "app", None):  # under mitmweb
            mitmweb.widen_comment_column(app)

    def done(self) -> None:
        if self._watcher:
            self._watcher.cancel()
        for timer in self._timers.values():
            timer.cancel()
        upstream_errors.uninstall()

    async def _watch(self) -> None:
        # Requests check the file too; this catches edits while idle (a port
        # change rebinds at once, a bad edit is reported at once).
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            self.reload_if_changed()

    def reload_if_changed(self) -> None:
        path = self._config_path
        stamp = _stamp(path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        keeping = f"keeping the last good config ({describe(self.settings)})"
        if stamp is None:
            log.error(f"{path}: the file is gone; {keeping}")
            return
        try:
            file, self._stamp = self._read(path, self._overrides())
            new = merge(file, self._overrides(), path)
        except (ConfigError, exceptions.OptionsError) as e:
            log.error(f"{e} — {keeping}")
            return
        except OSError as e:
            log.error(f"{path}: cannot be read ({e}); {keeping}")
            return
        self.file = file
        self._install(new, f"{os.path.basename(path)} changed")

    # ------------------------------------------------------------ hooks

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or self.settings is None:
            return
        try:
            self._request(flow)
        except Exception:
            # An auth layer fails closed: whatever went wrong, nothing is forwarded.
            log.exception(f"auth gate error on {flow.request.method} {_loggable(flow.request)}; denying")
            self._stash.pop(flow.id, None)
            flow.response = _json_response(500, {"error": {
                "message": "The auth gate failed on this request and denied it; its log says why.",
                "type": "gate_error", "code": "gate_error"}})
        if flow.response and flow.request.method == "HEAD":
            flow.response.content = b""  # a body on HEAD would break the client's next response

    def _request(self, flow: http.HTTPFlow) -> None:
        self.reload_if_changed()
        s = self.settings
        req = flow.request
        if req.http_version.startswith("HTTP/1") and req.authority:
            # Absolute-form (GET http://elsewhere/ HTTP/1.1) would reach any host.
            flow.response = _json_response(400, {"error": {
                "message": f"Absolute-form request to {req.authority} refused: send origin-form "
                           f"requests (GET /path) to this proxy; they go to {s.upstream.url}.",
                "type": "invalid_request_error", "code": "not_a_forward_proxy"}})
            return
        d = self._decide(flow)
        meta = flow.metadata["auth"] = explain.detail(d, self.lang)
        flow.comment = explain.comment(d, self.lang)
        if d.allowed:
            self.passed += 1
        else:
            self.denied += 1
        if not s.enforce:
            # Shadow mode: the real proxy decides; its answer is checked against
            # this prediction when it arrives (see _judge_shadow).
            meta["shadow"], meta["predicted"] = True, flow.comment
            flow.comment = explain.shadow_waiting(flow.comment, self.lang)
            self._forward(flow, s, strip=False)
            return
        flow.marked = "" if d.allowed else DENIED_MARKER
        if not d.allowed:
            flow.response = self._denial(d, req)
            if d.reason == "empty_api_key":
                log.error(explain.EMPTY_KEY_LOG)
            log.info(f"{flow.comment} — {req.method} {_loggable(req)}")
            return
        if d.route == "upstream":
            self._forward(flow, s)
        else:
            flow.response = self._local_answer(d.route, req, s)

    def _local_answer(self, route: str, req: http.Request, s: Settings) -> http.Response:
        """The proxy's own routes: CORS preflight, /healthz, and /healthz with another method."""
        if route == "preflight":
            return http.Response.make(200, b"", {
                **CORS,
                "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
                "access-control-allow-headers": req.headers.get("access-control-request-headers", "*"),
                "access-control-max-age": "3600"})
        if route == "health":
            body = {"status": "ok", "version": V4_VERSION} if s.profile == "v4" else {"status": "ok"}
            return _json_response(200, body)
        return _json_response(405, {"error": {"message": f"{req.path.partition('?')[0]} answers GET and HEAD only",
                                              "type": "invalid_request_error"}}, allow="GET, HEAD")

    def _decide(self, f: http.HTTPFlow) -> Decision:
        req = f.request
        return decide(RequestView(req.method, req.path, req.headers.fields), self.settings)

    def _denial(self, d: Decision, req: http.Request) -> http.Response:
        lang = explain.pick_language(req.headers.get("accept-language"), self.lang)
        if d.status == 403:  # v4: the original's token_rejected body, the explanation beside it
            body = {"error": V4_REJECTED}
            if self.explain:
                body["auth_gate"] = {**explain.detail(d, lang), "message": explain.message(d, lang)}
            return _json_response(403, body)
        if not self.explain:  # the original: a bare 401, CORS header only
            return http.Response.make(401, b"", CORS)
        return http.Response.make(401, explain.denial_body(d, req.path, lang), {
            "content-type": "application/json", **CORS, "content-language": lang,
            "www-authenticate": explain.www_authenticate(d)})

    def _forward(self, flow: http.HTTPFlow, s: Settings, strip: bool = True) -> None:
        up = s.upstream
        req = flow.request
        # The client's proxy key never reaches the upstream; it is put back on
        # the flow when the response arrives, so mitmweb shows what the client
        # sent and a replay is decided again on the same headers.
        fields = req.headers.fields
        moved = (req.scheme, req.host, req.port) != (up.scheme, up.host, up.port)
        self._stash[flow.id] = (fields, req.data.path, moved)
        if strip:
            kept = tuple([f for f in fields if f[0].lower() not in _KEY_HEADER_NAMES])
            if len(kept) != len(fields):
                req.headers.fields = kept
        if moved:  # in reverse mode it already points there, unless upstream.url changed live
            req.scheme, req.host, req.port = up.scheme, up.host, up.port
        if up.prefix:
            req.path = up.prefix + req.path
        for name, value in up.headers:  # the upstream's own credentials
            req.headers[name] = value
        flow.metadata["auth"]["upstream"] = (up.url, up.timeout)
        if flow.is_replay != "request":  # a replay's connection is mitmproxy's own: nothing to cut
            self._arm(flow, up.timeout)

    def _arm(self, flow: http.HTTPFlow, timeout: float) -> None:
        self._timers[flow.id] = asyncio.get_running_loop().call_later(timeout, self._give_up, flow, timeout)

    def _disarm(self, flow: http.HTTPFlow) -> None:
        if timer := self._timers.pop(flow.id, None):
            timer.cancel()

    def _give_up(self, flow: http.HTTPFlow, timeout: float) -> None:
        """No response headers within upstream.timeout: end the wait (error hook → 504)."""
        self._timers.pop(flow.id, None)
        if not flow.live or flow.response or flow.error:
            return
        if upstream_errors.cut(flow):
            flow.metadata["auth"]["timed_out"] = True
        else:  # no upstream connection yet (held at a mitmweb intercept, say): wait another round
            self._arm(flow, timeout)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)
        self._judge_shadow(flow)
        headers = flow.response.headers
        # One pass over the raw fields: every Headers lookup or assignment is a
        # scan of its own, on every response.
        cors = ours = False
        content_type = b""
        for name, value in headers.fields:
            name = name.lower()
            if name == b"access-control-allow-origin":
                cors = True
            elif name == b"x-auth-gate":
                ours = True
            elif name == b"content-type" and not content_type:
                content_type = value
        added = () if cors else ((b"access-control-allow-origin", b"*"),)
        if self.explain and (meta := flow.metadata.get("auth")):
            # The decision, for curl -i and scripts: which header won, and why
            # (in shadow mode, also whether the real proxy answered as predicted).
            value = explain.header_value(meta)
            if ours:  # the upstream sent one (a gate behind a gate): ours replaces it
                headers["x-auth-gate"] = value
            else:
                added += ((b"x-auth-gate", value.encode()),)
        if added:
            headers.fields += added
        # Server-sent events go through as they come, not buffered.
        if content_type.startswith(b"text/event-stream"):
            flow.response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._restore(flow)

    def client_disconnected(self, client: connection.Client) -> None:
        upstream_errors.forget(client.id)

    def error(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)
        meta = flow.metadata.get("auth")
        if meta and meta.get("timed_out"):  # mitmproxy saw only the connection closing
            flow.error.msg = (f"no answer from the upstream within {meta['upstream'][1]:g} s "
                              f"(upstream.timeout); the auth gate closed the connection")
        forwarded = self._restore(flow)
        self._judge_shadow(flow)
        if forwarded and not (flow.response and flow.response.stream):
            self._answer_upstream_failure(flow)

    def _answer_upstream_failure(self, flow: http.HTTPFlow) -> None:
        """The upstream failed before the client got anything: a JSON 502/504
        saying so, instead of mitmproxy's HTML page."""
        meta = flow.metadata["auth"]
        url, timeout = meta["upstream"]
        if meta.get("timed_out"):
            status, code, what = 504, "upstream_timeout", (
                f"did not answer within {timeout:g} s (upstream.timeout), so the gate stopped waiting. "
                f"Check the upstream, or raise upstream.timeout for slow answers.")
        elif flow.server_conn.timestamp_tcp_setup is None:
            status, code, what = 502, "upstream_unreachable", (
                f"is unreachable ({flow.error.msg}): nothing answers there. "
                f"Start the upstream or fix upstream.url.")
        else:
            status, code, what = 502, "upstream_error", (
                f"did not give a complete response ({flow.error.msg}). Check the upstream's log.")
        answer = http.Response.make(status, explain.upstream_error_body(
            meta, flow.request.path, status, code, f"The auth gate passed this request, but upstream {url} {what}"),
            {"content-type": "application/json", **CORS})
        if self.explain:
            answer.headers["x-auth-gate"] = explain.header_value(meta)
        if flow.request.method == "HEAD":
            answer.content = b""
        if upstream_errors.answer_instead(flow, answer):
            flow.comment += f" · {status} {code.replace('_', ' ')}"

    def _judge_shadow(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("auth")
        if not meta or not meta.get("shadow") or "shadow_verdict" in meta:
            return
        status = flow.response.status_code if flow.response else None
        error = flow.error.msg if flow.error else None
        flow.comment, meta["shadow_verdict"] = explain.shadow_verdict(
            meta["predicted"], meta["outcome"] == "allow", status, error, self.lang)
        surprising = meta["shadow_verdict"] in explain.SHADOW_SURPRISES
        flow.marked = SURPRISE_MARKER if surprising else (DENIED_MARKER if status in (401, 403) else "")
        if surprising:
            log.warning(f"{flow.comment} — {flow.request.method} {_loggable(flow.request)}")

    def _restore(self, flow: http.HTTPFlow) -> bool:
        """Put back what the client sent; False when the gate did not forward the flow."""
        stash = self._stash.pop(flow.id, None)
        if stash is None:
            return False
        # Back to what the client sent (upstream credentials out of the view and
        # out of replays), keeping the Host of where it really went.
        fields, path, moved = stash
        req = flow.request
        host = req.host_header if moved else None
        req.headers.fields, req.data.path = fields, path
        if moved:
            req.host_header = host
        return True

    # ------------------------------------------------------------ commands

    @command.command("auth.explain")
    def explain_flow(self, f: flow.Flow) -> str:
        """The full decision trace for a flow, under the settings in force now."""
        if not isinstance(f, http.HTTPFlow):
            raise exceptions.CommandError("auth.explain takes an HTTP flow")
        self.reload_if_changed()
        req = f.request
        d = self._decide(f)
        out = explain.trace(d, req.method, req.path, self.lang)
        recorded = f.comment if "auth" in f.metadata else ""
        if recorded and not recorded.startswith(explain.comment(d, self.lang)):
            out += f"\nrecorded when the flow ran: {recorded}\n(settings have changed since; replay to decide again)"
        return out

    @command.command("auth.regenerate")
    def regenerate(self) -> str:
        """A new sk- key, saved to config.yaml at once; the old key stops working."""
        key = generate_key()
        try:
            write_key(self._config_path, key)
        except (OSError, ConfigError) as e:
            raise exceptions.CommandError(f"{self._config_path}: cannot save the new key ({e}); nothing changed") from None
        note = ""
        if ctx.options.auth_api_key is not None:
            # The option would keep the old key in force: the new key must win.
            ctx.options.update(auth_api_key=None)
            note = " (the auth_api_key option override was cleared)"
        self.reload_if_changed()
        msg = f"new api_key {fingerprint(key)} saved to {self._config_path}; the old key no longer works{note}"
        log.warning(msg)
        return msg

    @command.command("auth.status")
    def status(self) -> str:
        """Mode (and why), LAN flag, key fingerprint, upstream, config file, counts."""
        self.reload_if_changed()
        s = self.settings
        return "\n".join([
            f"effective mode: {s.effective_mode} ({explain.mode_why(s.auth_mode, s.allow_lan_access)})",
            f"allow_lan_access: {str(s.allow_lan_access).lower()} (listening on {s.listen_host})",
            f"api_key: {fingerprint(s.api_key)}",
            f"upstream: {s.upstream.url} (timeout {s.upstream.timeout:g} s, then 504)",
            f"config: {s.config_path}" + (f" (options override: {', '.join(s.overridden)})" if s.overridden else ""),
            f"flows: {self.passed} passed, {self.denied} denied",
        ])


def _loggable(req: http.Request, limit: int = 200) -> str:
    """The request path for a log line: ASCII only (any byte escaped), and capped."""
    path = req.data.path.decode("ascii", "backslashreplace")
    return path if len(path) <= limit else f"{path[:limit]}… ({len(path)} chars)"


def _tristate(name: str) -> bool | None:
    """A true/false option that may be unset (mitmproxy has no Optional[bool])."""
    value = getattr(ctx.options, name)
    if value not in (None, "true", "false"):
        raise exceptions.OptionsError(f"option {name}: {value!r} is not true or false. Fix: --set {name}=true")
    return None if value is None else value == "true"


def _check_web_host(host: str, remote_ok: bool, has_password: bool) -> None:
    """mitmweb 11.0.x has no password: keep its UI on loopback unless forced.
    11.1.2+ asks for a token (or web_password): a remote UI is allowed, and said."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    where = host or "(all interfaces)"
    if has_password:
        log.warning(f"mitmweb on {where}: whoever has its token or web_password sees the keys in every flow "
                    f"and can change the auth settings")
        return
    if not remote_ok:
        raise exceptions.OptionsError(
            f"web_host {where} is not a loopback address. This mitmweb has no password, "
            f"so anyone who reaches the UI sees the keys and can change the auth settings. "
            f"Fix: --set web_host=127.0.0.1, upgrade to mitmproxy 11.1.2+ (token-protected UI), "
            f"or force it with --set auth_web_remote=true")


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def describe(s: Settings) -> str:
    """One line about a snapshot: never the key, only its fingerprint."""
    mode = s.auth_mode if s.auth_mode == s.effective_mode else f"{s.auth_mode} → {s.effective_mode}"
    over = f", options override {', '.join(s.overridden)}" if s.overridden else ""
    added = f" (adds {', '.join(n for n, _ in s.upstream.headers)})" if s.upstream.headers else ""
    profile = f", profile {s.profile}" if s.profile != "faq" else ""
    shadow = ", SHADOW MODE (forwards everything, predicts)" if not s.enforce else ""
    return (f"mode {mode} (allow_lan_access={str(s.allow_lan_access).lower()}), "
            f"api_key {fingerprint(s.api_key)}, upstream {s.upstream.url}{added}, port {s.port}"
            f"{profile}{shadow}{over}")


addons = [AuthGate()]
# The events of every request and connection (add_log: mitmproxy still sends
# every log record to that deprecated event). See _answer_lookups_cheaply.
HOT_EVENTS = ("requestheaders", "request", "responseheaders", "response", "error", "update", "add_log",
              "client_connected", "client_disconnected", "server_connect", "server_connected",
              "server_disconnected", "next_layer")


def _answer_lookups_cheaply() -> None:
    """mitmproxy treats this module as an addon too and looks up every event's
    handler on it, for every event of every flow. A name a module lacks costs an
    AttributeError with a formatted message (about 1.7 µs, a dozen times per
    request); None is the cheap "no handler here". Done at load, after
    mitmproxy's registration check, which warns about any module with add_log."""
    for name in HOT_EVENTS:
        globals().setdefault(name, None)
