"""profile v4's admin router: which paths it takes (pure).

v4.5.8 serves its management API (126 routes, server.rs:534-784) as a router
nested at `/api` (server.rs:795) whose endpoints are wrapped in StripPrefix,
so admin_auth_middleware sees the path without `/api`. admin_path() answers
whether a request path is one of those routes, and which path that
middleware sees; the admin decision itself is in v4.py, beside the proxy's
(both build the same record). Any other `/api/...` path is the proxy
router's fallback.
"""

from __future__ import annotations

# The admin router's 126 paths (server.rs:534-784), nested at /api (server.rs:795).
ADMIN_ROUTES = (
    "/health", "/accounts", "/accounts/current", "/accounts/switch", "/accounts/refresh",
    "/accounts/:accountId", "/accounts/:accountId/bind-device", "/accounts/:accountId/device-profiles",
    "/accounts/:accountId/device-versions", "/accounts/device-preview",
    "/accounts/:accountId/bind-device-profile", "/accounts/restore-original",
    "/accounts/:accountId/device-versions/:versionId/restore",
    "/accounts/:accountId/device-versions/:versionId", "/accounts/import/v1", "/accounts/import/db",
    "/accounts/import/db-custom", "/accounts/sync/db", "/stats/summary", "/stats/hourly", "/stats/daily",
    "/stats/weekly", "/stats/accounts", "/stats/models", "/config", "/proxy/cli/status", "/proxy/cli/sync",
    "/proxy/cli/restore", "/proxy/cli/config", "/proxy/opencode/status", "/proxy/opencode/sync",
    "/proxy/opencode/restore", "/proxy/opencode/clear", "/proxy/opencode/config", "/proxy/opencode/families",
    "/proxy/droid/status", "/proxy/droid/sync", "/proxy/droid/restore", "/proxy/droid/config",
    "/proxy/status", "/proxy/pool/config", "/proxy/pool/bindings", "/proxy/pool/bind", "/proxy/pool/unbind",
    "/proxy/pool/binding/:accountId", "/proxy/health-check/trigger", "/proxy/start", "/proxy/stop",
    "/proxy/mapping", "/proxy/api-key/generate", "/proxy/session-bindings/clear", "/proxy/rate-limits",
    "/proxy/rate-limits/:accountId", "/proxy/preferred-account", "/accounts/oauth/prepare",
    "/accounts/oauth/start", "/accounts/oauth/complete", "/accounts/oauth/cancel",
    "/accounts/oauth/submit-code", "/accounts/oauth/clients", "/accounts/oauth/client", "/zai/models/fetch",
    "/proxy/monitor/toggle", "/proxy/cloudflared/status", "/proxy/cloudflared/install",
    "/proxy/cloudflared/start", "/proxy/cloudflared/stop", "/system/open-folder", "/proxy/stats", "/logs",
    "/logs/count", "/logs/clear", "/logs/:logId", "/debug/enable", "/debug/disable", "/debug/enabled",
    "/debug/logs", "/debug/logs/clear", "/stats/token/clear", "/stats/token/hourly", "/stats/token/daily",
    "/stats/token/weekly", "/stats/token/by-account", "/stats/token/summary", "/stats/token/by-model",
    "/stats/token/model-trend/hourly", "/stats/token/model-trend/daily", "/stats/token/account-trend/hourly",
    "/stats/token/account-trend/daily", "/accounts/bulk-delete", "/accounts/export", "/accounts/reorder",
    "/accounts/:accountId/quota", "/accounts/:accountId/toggle-proxy", "/accounts/warmup",
    "/accounts/:accountId/warmup", "/system/data-dir", "/system/updates/settings",
    "/system/updates/check-status", "/system/updates/check", "/system/updates/touch", "/system/updates/save",
    "/system/autostart/status", "/system/autostart/toggle", "/system/http-api/settings",
    "/system/antigravity/path", "/system/antigravity/args", "/system/cache/clear", "/system/cache/paths",
    "/system/logs/clear-cache", "/security/logs", "/security/logs/clear", "/security/stats",
    "/security/token-stats", "/security/blacklist", "/security/blacklist/clear", "/security/blacklist/check",
    "/security/whitelist", "/security/whitelist/clear", "/security/whitelist/check", "/security/config",
    "/user-tokens", "/user-tokens/summary", "/user-tokens/:id/renew", "/user-tokens/:id", "/auth/url",
)
_ADMIN_STATIC = frozenset(r for r in ADMIN_ROUTES if ":" not in r)
_ADMIN_PARAM: dict[int, tuple[tuple[str, ...], ...]] = {}
for _route in ADMIN_ROUTES:
    if ":" in _route:
        _segs = tuple(_route.split("/"))
        _ADMIN_PARAM[len(_segs)] = _ADMIN_PARAM.get(len(_segs), ()) + (_segs,)


def admin_path(path: str) -> str | None:
    """`/api/<admin route>` -> the path admin_auth_middleware sees (`/api` stripped);
    None for any other path. Raw and case-sensitive, as axum (matchit) matches:
    `:param` is one non-empty segment, and a trailing slash is another path."""
    if not path.startswith("/api/"):
        return None
    inner = path[4:]
    if inner in _ADMIN_STATIC:
        return inner
    segs = inner.split("/")
    for pattern in _ADMIN_PARAM.get(len(segs), ()):
        for want, got in zip(pattern, segs):
            if want[:1] == ":":
                if not got:
                    break
            elif want != got:
                break
        else:
            return inner
    return None
