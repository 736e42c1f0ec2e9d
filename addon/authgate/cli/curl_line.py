"""A pasted curl command line, read as `just explain` reads its arguments.

    curl -is -X POST http://127.0.0.1:8045/v1/messages -H 'x-api-key: ...' -d '{...}'

becomes the explainer's own arguments (`-X POST -H 'x-api-key: ...'
/v1/messages`): the word `curl` and curl's display and transport flags (-i,
-s, -S, -v, -L, -k, -o FILE, -m SECONDS, ...) are dropped, a full URL gives its
path and query, a body (-d, --data..., -F, --json) makes it a POST unless -X
says otherwise, and the flags that send a header (-u, -A, -e, -b, --json)
become that header. No mitmproxy import.
"""

from __future__ import annotations

import base64
import shlex
from urllib.parse import urlsplit

# Flags that change nothing the auth layer reads.
_QUIET = {"-i", "--include", "-s", "--silent", "-S", "--show-error", "-v", "--verbose", "-L", "--location",
          "-k", "--insecure", "--compressed", "-f", "--fail", "--fail-with-body", "-N", "--no-buffer", "-#",
          "--progress-bar", "-g", "--globoff", "--http1.0", "--http1.1", "--http2", "-4", "-6", "-q",
          "--no-keepalive", "-Z", "--parallel", "--raw"}
_QUIET_WITH_VALUE = {"-o", "--output", "-m", "--max-time", "--connect-timeout", "-w", "--write-out", "--retry",
                     "--retry-delay", "-D", "--dump-header", "-c", "--cookie-jar", "--resolve", "--limit-rate",
                     "-x", "--proxy", "--cacert", "-E", "--cert", "-T", "--upload-file", "-y", "-Y"}  # not --key: ours
_DATA = {"-d", "--data", "--data-raw", "--data-binary", "--data-ascii", "--data-urlencode", "-F", "--form"}
_HEADER_FLAGS = {"-A": "User-Agent", "--user-agent": "User-Agent", "-e": "Referer", "--referer": "Referer",
                 "-b": "Cookie", "--cookie": "Cookie"}
# The explainer's own flags that take a value (their value is never a URL).
_OWN_WITH_VALUE = {"-H", "--header", "--config", "--mode", "--key", "--profile", "--lang", "--admin-password",
                   "--tokens-db", "--now"}
# Short flags that take a value: in a bundle (-sSH 'x: y', -XPOST) the rest of it, or the next word.
_SHORT_WITH_VALUE = set("HXdouAebmwDcxFTEyY")


def _split_bundles(argv: list[str]) -> list[str]:
    """-isv -> -i -s -v; -XPOST -> -X POST; -sH v -> -s -H v."""
    out: list[str] = []
    for arg in argv:
        if not arg.startswith("-") or arg.startswith("--") or len(arg) <= 2:
            out.append(arg)
            continue
        for i, c in enumerate(arg[1:], start=1):
            out.append("-" + c)
            if c in _SHORT_WITH_VALUE:
                if i + 1 < len(arg):
                    out.append(arg[i + 1:])
                break
    return out


def normalize(argv: list[str]) -> tuple[list[str], list[str]]:
    """The explainer's arguments for what may be a pasted curl line, and notes
    on what was read from it (the URL's path, a body making it a POST)."""
    words: list[str] = []
    for i, arg in enumerate(argv):
        own_value = i > 0 and argv[i - 1] in _OWN_WITH_VALUE
        if not own_value and arg.lstrip().startswith("curl "):  # a line pasted as one quoted argument
            words += [w for w in shlex.split(arg.replace("\\\n", " ")) if w != "curl"]
        elif own_value or arg != "curl":
            words.append(arg)
    args = _split_bundles(words)
    out: list[str] = []
    notes: list[str] = []
    method = None
    body = False
    i = 0
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) else None
        if arg in _QUIET:
            pass
        elif arg in _QUIET_WITH_VALUE:
            i += 1
        elif arg in ("-I", "--head"):
            method = method or "HEAD"
        elif arg in ("-X", "--request") and value is not None:
            method = value
            i += 1
        elif arg in _DATA and value is not None:
            body = True
            i += 1
        elif arg == "--json" and value is not None:
            body = True
            out += ["-H", "Content-Type: application/json", "-H", "Accept: application/json"]
            i += 1
        elif arg in ("-u", "--user") and value is not None:
            out += ["-H", "Authorization: Basic " + base64.b64encode(value.encode()).decode()]
            i += 1
        elif arg in _HEADER_FLAGS and value is not None:
            out += ["-H", f"{_HEADER_FLAGS[arg]}: {value}"]
            i += 1
        elif arg == "--url" and value is not None:
            out.append(_path(value, notes))
            i += 1
        elif not arg.startswith("-") and not (out and out[-1] in _OWN_WITH_VALUE) and _looks_like_url(arg):
            out.append(_path(arg, notes))
        else:
            out.append(arg)
        i += 1
    if method is None and body:
        method = "POST"
        notes.append("a body (-d, --data, -F or --json) makes curl send POST")
    if method is not None:
        out += ["-X", method]
    return out, notes


def _looks_like_url(arg: str) -> bool:
    return "://" in arg or (":" in arg.split("/", 1)[0] and "/" in arg and " " not in arg)


def _path(url: str, notes: list[str]) -> str:
    """The request target the gate sees for a URL curl would call."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    notes.append(f"URL {url}: the gate sees the path {target}")
    return target
