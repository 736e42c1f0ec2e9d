"""words/memo.py: a decision's words and its denial, made once per distinct decision and language,
exactly what explain and answers make; bounded; never keyed on the key a client sent."""

import pytest

from authgate.rules.common import Decision, RequestView, V4Decision, V4Facts
from authgate.rules.decide import decide
from authgate.words import answers, explain, memo
from policy import KEY, Policy


def run(*headers, method="GET", path="/v1/models", **policy):
    return decide(RequestView(method, path, tuple((n.encode(), v.encode()) for n, v in headers)), Policy(**policy))


@pytest.fixture(autouse=True)
def fresh():
    memo.forget()
    yield
    memo.forget()


@pytest.mark.parametrize("headers", [(("Authorization", f"Bearer {KEY}"),), (("x-api-key", "sk-wrong-key-123456"),),
                                     (), (("Authorization", f"Bearer{KEY}"), ("x-api-key", KEY))])
@pytest.mark.parametrize("lang", ["en", "fr", "zh-TW"])
def test_the_words_are_explains_own_and_each_flow_gets_its_own_dict(headers, lang):
    d = run(*headers)
    for _ in range(2):  # made, then kept
        detail, comment = memo.words(d, lang)
        assert (detail, comment) == (explain.detail(d, lang), explain.comment(d, lang))
    detail["upstream"] = ("http://up", 1.0)  # a flow's metadata grows: the kept words do not
    assert "upstream" not in memo.words(d, lang)[0]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/messages", "/v1beta/models/m:generateContent"])
@pytest.mark.parametrize("explained", [True, False])
def test_a_denial_is_answers_own_in_the_shape_its_path_asks_for(path, explained):
    d = run(("Authorization", "Bearer sk-wrong-key-123456"), path=path)
    for _ in range(2):
        assert memo.denial(d, path, "en", explained) == answers.denial(d, path, "en", explained)


def test_two_keys_with_different_fingerprints_get_their_own_words():
    a, b = run(("x-api-key", "sk-aaaa-1111-2222-wxyz")), run(("x-api-key", "sk-aaaa-1111-2222-wxyw"))
    assert memo.words(a, "en")[0]["presented"] != memo.words(b, "en")[0]["presented"]
    assert memo.denial(a, "/v1/models") != memo.denial(b, "/v1/models")


def test_v4_facts_are_part_of_what_a_decision_is_known_by():
    record = (False, "denied", 403, "strict", "strict", False, True, "token_expired", "Authorization", "bearer",
              (("Authorization", "won"),), None, b"sk-user-token-0123456789")
    one = V4Decision(*record, facts=V4Facts(surface="proxy", token="expired", token_user="ann"))
    two = V4Decision(*record, facts=V4Facts(surface="proxy", token="expired", token_user="bob"))
    assert one == two  # equal as records...
    assert memo.words(one, "en") == (explain.detail(one, "en"), explain.comment(one, "en"))
    assert memo.words(two, "en") == (explain.detail(two, "en"), explain.comment(two, "en"))
    assert memo.words(one, "en")[0]["token_user"] == "ann" and memo.words(two, "en")[0]["token_user"] == "bob"


def test_the_cache_holds_no_key_and_stays_bounded():
    key = b"sk-" + b"s3cr3t" * 6
    d = run(("x-api-key", key.decode()))
    memo.words(d, "en")
    memo.denial(d, "/v1/models")
    kept = repr(list(memo._kept)) + repr(list(memo._answers))
    assert key.decode() not in kept and key[3:-4].decode() not in kept
    short = run(("x-api-key", "abc12"))  # a short key: the fingerprint shows its length only
    assert memo.shown_key(short) == 5 and "abc12" not in repr(memo.shown_key(short))
    for i in range(memo.WORDS_KEPT + 50):  # a client trying keys: the oldest words are forgotten
        d = run(("x-api-key", f"sk-{i:030d}"))
        memo.words(d, "en")
        memo.denial(d, "/v1/models")
    assert len(memo._kept) == len(memo._answers) == memo.WORDS_KEPT


def test_a_presented_fingerprint_is_taken_as_it_is():
    d = run(("x-api-key", "sk-aaaa-1111-2222-wxyz"))
    as_text = d._replace(presented="sk-…wxyz (22 chars)")  # if a decision ever holds the fingerprint itself
    assert memo.shown_key(as_text) == "sk-…wxyz (22 chars)"
    assert isinstance(d, Decision)
