"""Property tests: the decision agrees with a second, independent statement of the rules.

The model below is written from the FAQ and the issue, not from decision.py:
it shares no code with it. Hypothesis throws random header sets at both
(name case, repeats, order, non-ASCII bytes, whitespace, empty values).
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from authgate import explain
from authgate.decision import RequestView, decide
from policy import Policy

PRIORITY = ["authorization", "x-api-key", "x-goog-api-key"]


def model(method: str, path: str, headers, mode: str, lan: bool, key: str):
    """-> (allowed, winner or None). Straight from the FAQ's rules."""
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
    if d.auth_required:
        assert d.winner == winner
    # and the words never fail, never carry the key
    texts = explain.comment(d) + explain.denial_body(d, path).decode() + explain.trace(d, method, path)
    if len(key) > 8:
        assert key not in texts


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30),
       st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=10),
       st.sampled_from(["off", "strict", "all_except_health", "auto"]), st.booleans(),
       st.sampled_from(KEYS))
def test_decision_never_raises(method, path, headers, mode, lan, key):
    d = decide(RequestView(method, path, tuple(headers)), Policy(mode, lan, key))
    explain.comment(d), explain.denial_body(d, path), explain.trace(d, method, path)
