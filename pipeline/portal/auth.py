"""Logging in: argon2id password hashes, a signed session cookie with an idle timeout, a CSRF token
per session, and a growing delay then a temporary lock after failed logins.

The cookie holds the account name, the account's session epoch (logout, disable and reset raise it,
which voids every cookie issued before) and the session's CSRF token, signed with the key kept in the
store (itsdangerous). Its signature carries the time it was issued; every answer issues it again, so
it expires after `session_idle_minutes` without a request.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from pipeline.config import PortalConfig
from pipeline.portal import store as portal_store
from pipeline.portal.months import in_background
from pipeline.portal.store import User

COOKIE = "callqa_session"
MAX_DELAY_S = 8.0
USER_CACHE_S = 5.0  # a `callqa users disable` from the command line applies within this

_hasher = PasswordHasher()  # argon2id, argon2-cffi's defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _hasher.hash("callqa-no-such-user")
_VERIFYING = threading.BoundedSemaphore(2)


def hash_password(password: str) -> str:
    if len(password) < 8:
        from pipeline.errors import CallQAError

        raise CallQAError("密码至少 8 个字符")
    return _hasher.hash(password)


def password_matches(user: User | None, password: str) -> bool:
    """Constant work whether or not the account exists (the answer's timing tells nothing). At most
    two at a time: each takes 64 MiB and a core, and a burst of logins must not starve the pages."""
    with _VERIFYING:
        try:
            return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
        except (VerificationError, InvalidHashError):
            return False


def failure_delay(failures: int, base_s: float) -> float:
    """The pause before answering the n-th failed login in a row: base, doubling, at most 8 s."""
    return min(MAX_DELAY_S, base_s * 2 ** max(0, failures - 1))


@dataclass(frozen=True)
class Session:
    user: User | None
    csrf: str

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf, str(sent))


class Sessions:
    def __init__(self, secret: str, config: PortalConfig, settings: object) -> None:
        self.serializer = URLSafeTimedSerializer(secret, salt="callqa-portal-session")
        self.config = config
        self.settings = settings
        self._users: dict[str, User] = {}
        self._loaded_at = -USER_CACHE_S
        self._forgotten = 0
        self._lock = threading.Lock()

    @property
    def idle_s(self) -> int:
        return max(1, int(self.config.session_idle_minutes * 60))

    def read(self, cookie: str | None) -> Session:
        """The request's session: a logged-in account, or an anonymous one (with its own CSRF token)."""
        if cookie:
            try:
                data = self.serializer.loads(cookie, max_age=self.idle_s)
            except BadSignature:  # forged, altered or idle too long (SignatureExpired)
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str):
                account = self.account(data["u"]) if data.get("u") else None
                if account and not account.disabled and account.session_epoch == data.get("e"):
                    return Session(account, data["c"])
                return Session(None, data["c"])
        return Session(None, secrets.token_urlsafe(24))

    def cookie_value(self, session: Session) -> str:
        user = session.user
        return self.serializer.dumps(
            {"u": user.name if user else None, "e": user.session_epoch if user else None, "c": session.csrf}
        )

    def login(self, user: User) -> Session:
        """A new session (new CSRF token) for the account that just logged in."""
        return Session(user, secrets.token_urlsafe(24))

    def account(self, name: str) -> User | None:
        """The account as stored, read again (all accounts in one query) at most every USER_CACHE_S:
        in the background while a previous read is at hand, else (at start, after forget()) at once."""
        if time.monotonic() - self._loaded_at >= USER_CACHE_S:
            if self._loaded_at < 0:
                with self._lock:
                    if self._loaded_at < 0:
                        self._read_accounts()
            else:
                in_background(self._lock, self._read_accounts)
        return self._users.get(name)

    def _read_accounts(self) -> None:
        started = self._forgotten
        with portal_store.opened(self.settings, write=False) as store:  # type: ignore[arg-type]
            users = {u.name: u for u in portal_store.users(store)}
        self._users = users
        if started == self._forgotten:  # a forget() meanwhile: read again at the next request
            self._loaded_at = time.monotonic()

    def forget(self) -> None:
        """Read the accounts again at the next request (after logout, login, a change)."""
        self._forgotten += 1
        self._loaded_at = -USER_CACHE_S
