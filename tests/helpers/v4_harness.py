"""What the pure profile v4 tests share: a request, a decision under a v4
policy at a fixed time, and user-token stores (in memory, failing, vanishing)."""

from authgate.rules import v4
from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.rules.tokens import MemoryTokenStore, TokenRow, TokenStoreError
from policy import KEY, Policy

NOW = 1767225600  # 2026-01-01 00:00:00 UTC = 08:00 Beijing time
PWD = "admin-pass-123"
USER = "sk-user0123456789abcdef0123456789ab"
ROW = TokenRow(id="t1", token=USER, username="alice")

# What each v4 denial answers. The key-shape reasons (mismatch, empty_value,
# bearer_no_space, bearer_lowercase, bearer_extra_space) are 403 on proxy
# routes (the key is not a user token either: Decision.token == "unknown")
# and 401 on admin routes, where user tokens are never consulted.
DENIAL_STATUS = {
    "missing": 401, "non_ascii": 401, "empty_api_key": 401,  # auth.rs:133-143, 235-236
    "token_expired": 403, "token_ip_limit": 403, "token_curfew": 403,  # auth.rs:211-228
    "token_store_error": 500,  # auth.rs:230-233
    "token_vanished": 401,  # auth.rs:207-209
    "admin_empty_credentials": 401, "admin_password_mismatch": 401, "admin_api_key_refused": 401,
}
SHAPE_REASONS = ("mismatch", "empty_value", "bearer_no_space", "bearer_lowercase", "bearer_extra_space")


def req(method="GET", path="/v1/models", *headers):
    return RequestView(method, path, tuple((n.encode("latin-1") if isinstance(n, str) else n,
                                            v.encode("latin-1") if isinstance(v, str) else v) for n, v in headers))


def run(method="GET", path="/v1/models", *headers, mode="strict", lan=False, api_key=KEY, password=None,
        store=None, now=NOW):
    return decide(req(method, path, *headers), Policy(mode, lan, api_key, "v4", password), store, now)


def store(*rows, recorded=None):
    return MemoryTokenStore(rows or (ROW,), recorded)


class FailingStore:
    """A user_tokens.db that cannot be read (missing, locked, a NULL where the app expects a value)."""

    def lookup(self, token):
        raise TokenStoreError("Failed to open database: unable to open database file")

    def is_bound(self, token_id, ip):
        return False

    def ip_count(self, token_id):
        return 0

    def record(self, token_id, ip):
        raise AssertionError("nothing to record")


class VanishingStore(MemoryTokenStore):
    """The row is there for validate_token, gone at auth.rs's second lookup."""

    def __init__(self):
        super().__init__([ROW])
        self.calls = 0

    def lookup(self, token):
        self.calls += 1
        return super().lookup(token) if self.calls == 1 else None


BEARER = ("Authorization", f"Bearer {KEY}")


def expected_denial_status(d):
    if d.reason in SHAPE_REASONS:
        return 401 if d.surface == "admin" else 403
    return DENIAL_STATUS[d.reason]
