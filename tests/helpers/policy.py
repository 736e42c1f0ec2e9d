"""A fixed decision policy for the pure tests: the slice of Settings that decide() reads."""

from dataclasses import dataclass

KEY = "sk-0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Policy:
    auth_mode: str = "strict"
    allow_lan_access: bool = False
    api_key: str = KEY
    profile: str = "faq"
    admin_password: str | None = None  # read by profile v4 only
