"""Property tests: the decision agrees with a second, independent statement of the rules.

The model below is written from the FAQ and the issue, not from decision.py:
it shares no code with it. Hypothesis throws random header sets at both
(name case, repeats, order, non-ASCII bytes, whitespace, empty values).
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.words import error_bodies, explain
from policy import Policy

PRIORITY = ["authorization", "x-api-key", "x-goog-api-key"]


# httparse's header value bytes: tab, space to ~, and 0x80-0xFF; anything else is a 400 before auth.
VALUE_BYTES = {9, *range(32, 127), *range(128, 256)}


def refused(headers) -> bool:
    return any(b not in VALUE_BYTES for _, v in headers for b in v)


def model(method: str, path: str, headers, mode: str, lan: bool, key: str):
    """-> (allowed, winner or None). Straight from the FAQ's rules."""
    if refused(headers):
        return False, None  # the original's parser answers 400 before any middleware
    if method == "OPTIONS":
        return True, None
    if mode == "auto":
        mode = "all_except_health" if lan else "off"
    if mode == "off":
        return True, None
    if mode == "all_except_health" and path.split("?")[0] == "/healthz":
        return True, None
    for wanted in PRIORITY:
        values = [v for n, v in headers if n.lower() == wanted.encode()]
        if not values:
            continue
        first = values[0]
        if not all(b == 9 or 32 <= b <= 126 for b in first):
            continue  # not visible ASCII: as if absent
        candidate = first
        if wanted == "authorization" and first[:7] == b"Bearer ":
            candidate = first[7:]
        winner = {"authorization": "Authorization"}.get(wanted, wanted)
        return key != "" and candidate == key.encode(), winner
    return False, None



KEYS = ["sk-0123456789abcdef0123456789abcdef", "k", ""]


def random_case(name: str):
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(name, flips)))


names = st.one_of(
    st.sampled_from(PRIORITY).flatmap(random_case),
    st.sampled_from(["content-type", "accept", "x-api", "api-key", "authorisation", "proxy-authorization"]),
)


def values_for(key: str):
    return st.one_of(
        st.just(key.encode()),
        st.just(b"Bearer " + key.encode()),
        st.sampled_from([b"Bearer" + key.encode(), b"bearer " + key.encode(), b"Bearer  " + key.encode(),
                         b"", b"Bearer ", b" ", b"\t" + key.encode(), key.encode() + b" ",
                         b"Bearer " + key.encode() + b"\x7f", b"a\rx-api-key: " + key.encode(), b"a\r\n b",
                         b"Bearer \xe2\x80\x9c" + key.encode() + b"\xe2\x80\x9d", b"\xff", b"sk-wrong"]),
        st.binary(max_size=24),
    )


@st.composite
def requests(draw):
    key = draw(st.sampled_from(KEYS))
    pairs = draw(st.lists(st.tuples(names, values_for(key or "sk-x")), max_size=7))
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "DELETE"]))
    path = draw(st.sampled_from(["/v1/models", "/healthz", "/healthz?x=1", "/healthz/", "/HEALTHZ", "/health",
                                 "/v1/messages", "/"]))
    mode = draw(st.sampled_from(["off", "strict", "all_except_health", "auto"]))
    lan = draw(st.booleans())
    headers = tuple((n.encode("latin-1"), v) for n, v in pairs)
    return method, path, headers, mode, lan, key


@settings(max_examples=2000, deadline=None)
@given(requests())
def test_decision_agrees_with_the_model(case):
    method, path, headers, mode, lan, key = case
    d = decide(RequestView(method, path, headers), Policy(mode, lan, key))
    allowed, winner = model(method, path, headers, mode, lan, key)
    assert d.allowed == allowed
    assert (d.status == 400 and d.route == "bad_request") == refused(headers)
    if d.auth_required:
        assert d.winner == winner
    # and the words never fail, never carry the key
    texts = explain.comment(d) + error_bodies.denial_body(d, path).decode() + explain.trace(d, method, path)
    if len(key) > 8:
        assert key not in texts


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30),
       st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=10),
       st.sampled_from(["off", "strict", "all_except_health", "auto"]), st.booleans(),
       st.sampled_from(KEYS))
def test_decision_never_raises(method, path, headers, mode, lan, key):
    d = decide(RequestView(method, path, tuple(headers)), Policy(mode, lan, key))
    explain.comment(d), error_bodies.denial_body(d, path), explain.trace(d, method, path)


# ---- profile v4: v4.5.8's auth layer, stated again from the rules table (docs/versions-and-v4.md),
# sharing no code with v4.py or tokens.py.

from authgate.rules.common import V4Facts  # noqa: E402
from authgate.rules.tokens import MemoryTokenStore, TokenRow  # noqa: E402

V4_PATHS = ["/v1/models", "/healthz", "/health", "/healthz?x=1", "/api/health", "/api/accounts",
            "/api/user-tokens/7", "/api/nope", "/api/healthz", "/internal/warmup", "/internal/../v1/models",
            "/internal/%2e%2e/v1", "/internal", "/v1/api/event_logging"]
V4_ADMIN = {"/api/health": "/health", "/api/accounts": "/accounts", "/api/user-tokens/7": "/user-tokens/7"}
V4_TOKENS = ["sk-t1", "sk-t2", "sk-t3"]
V4_NOW = 1767225600  # 08:00 in Beijing


def _first(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v.decode("ascii") if all(b == 9 or 32 <= b < 127 for b in v) else None
    return None


def _key(headers, goog=True):
    a = _first(headers, b"authorization")
    if a is not None:
        return a[len("Bearer "):] if a.startswith("Bearer ") else a
    k = _first(headers, b"x-api-key")
    if k is not None or not goog:
        return k
    return _first(headers, b"x-goog-api-key")


def v4_model(method, target, headers, mode, lan, api_key, pwd, rows, bound):
    """-> (allowed, status of a denial or None)."""
    path = target.split("?")[0]
    if refused(headers):
        return False, 400
    if method == "OPTIONS":
        return True, None
    if mode == "auto":
        mode = "all_except_health" if lan else "off"
    health = {"/healthz", "/api/health", "/health"}
    admin = V4_ADMIN.get(path)
    key = _key(headers)
    if admin is not None:
        if admin in health:
            return True, None
        if api_key == "" and not pwd:
            return False, 401
        return (True, None) if key is not None and key == (pwd or api_key) else (False, 401)
    if mode == "off":
        return True, None
    if mode == "all_except_health" and path in health:
        return True, None
    if path.startswith("/internal/") and ".." not in path.replace("%2e", ".").replace("%2E", "."):
        return True, None  # (the gate's hardening: dot segments get no exemption)
    if api_key == "" and not pwd:
        return False, 401
    if key is not None and key == api_key:
        return True, None
    if key is None:
        return False, 401
    row = rows.get(key)
    if row is None:
        return False, 403
    expires_type, expires_at, max_ips, start, end = row
    if expires_type != "never" and expires_at is not None and expires_at < V4_NOW:
        return False, 403
    xff, real = _first(headers, b"x-forwarded-for"), _first(headers, b"x-real-ip")
    ip = xff.split(",")[0].strip() if xff is not None else real if real is not None else "127.0.0.1"
    ips = bound.get(key, set())
    if max_ips > 0 and ip not in ips and len(ips) >= max_ips:
        return False, 403
    if start and end:
        now = "08:00"
        if (now >= start or now < end) if start > end else (start <= now < end):
            return False, 403
    return True, None


def v4_values(keys):
    return st.one_of(st.sampled_from([k.encode() for k in keys]),
                     st.sampled_from([b"Bearer " + k.encode() for k in keys]),
                     st.sampled_from([b"", b"Bearer", b"\xff", b"sk-wrong", b"Bearer  sk-t1", b"sk-t1\r",
                                      b"Bearer sk-t1\x7f", b"a\r\n b"]))


@st.composite
def v4_cases(draw):
    api_key = draw(st.sampled_from([KEYS[0], ""]))
    pwd = draw(st.sampled_from([None, "", "pw-admin"]))
    keys = [k for k in (api_key, pwd) if k] + V4_TOKENS
    key_headers = st.tuples(st.sampled_from(["Authorization", "x-api-key", "X-Goog-Api-Key", "accept"]),
                            v4_values(keys))
    ip_headers = st.tuples(st.sampled_from(["X-Forwarded-For", "x-real-ip"]),
                           st.sampled_from([b"10.0.0.1", b" 10.0.0.2 , 10.0.0.1", b"", b"10.0.0.9", b"\xff"]))
    pairs = draw(st.lists(st.one_of(key_headers, ip_headers), max_size=5))
    rows, bound, store_rows = {}, {}, []
    for i, token in enumerate(V4_TOKENS):
        if draw(st.booleans()):
            row = (draw(st.sampled_from(["never", "day"])), draw(st.sampled_from([None, V4_NOW - 1, V4_NOW]))
                   , draw(st.integers(0, 2)), draw(st.sampled_from([None, "", "07:00", "22:00"])),
                   draw(st.sampled_from([None, "09:00", "06:00"])))
            ips = set(draw(st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2", "127.0.0.1"]), max_size=2)))
            rows[token], bound[token] = row, ips
            store_rows.append(TokenRow(f"id{i}", token, f"user{i}", enabled=draw(st.booleans()),
                                       expires_type=row[0], expires_at=row[1], max_ips=row[2], curfew_start=row[3],
                                       curfew_end=row[4], bound_ips=tuple(sorted(ips))))
    return (draw(st.sampled_from(["GET", "POST", "HEAD", "OPTIONS"])), draw(st.sampled_from(V4_PATHS)),
            tuple((n.encode(), v) for n, v in pairs), draw(st.sampled_from(["off", "strict", "all_except_health",
                                                                            "auto"])),
            draw(st.booleans()), api_key, pwd, rows, bound, store_rows)


@settings(max_examples=3000, deadline=None)
@given(v4_cases())
def test_v4_decision_agrees_with_the_notes_model(case):
    method, path, headers, mode, lan, api_key, pwd, rows, bound, store_rows = case
    d = decide(RequestView(method, path, headers), Policy(mode, lan, api_key, "v4", pwd),
               MemoryTokenStore(store_rows), V4_NOW)
    allowed, status = v4_model(method, path, headers, mode, lan, api_key, pwd, rows, bound)
    assert d.allowed == allowed
    assert set(vars(d)) == set(V4Facts._fields)  # the facts, and nothing but them
    if not allowed:
        assert d.status == status
    texts = explain.comment(d) + explain.trace(d, method, path) + (explain.message(d) if not d.allowed else "")
    for secret in (KEYS[0], "pw-admin"):
        if secret:
            assert secret not in texts


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.text(max_size=40),
       st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=10),
       st.sampled_from(["off", "strict", "all_except_health", "auto"]), st.booleans(),
       st.sampled_from(KEYS), st.sampled_from([None, "", "pw"]), st.floats(-1e10, 1e10))
def test_v4_decision_never_raises(method, path, headers, mode, lan, key, pwd, now):
    store = MemoryTokenStore([TokenRow("t", "sk-t", "u", max_ips=1, curfew_start="22:00", curfew_end="06:00")])
    d = decide(RequestView(method, path, tuple(headers)), Policy(mode, lan, key, "v4", pwd), store, now)
    explain.comment(d), error_bodies.denial_body(d, path), explain.trace(d, method, path), explain.detail(d)
