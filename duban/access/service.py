"""The sign-in and access service (SPEC §12): what the board, the API and the CLI call.

Every method reads the clock once and writes in one transaction, audit events included,
so a refused operator command changes nothing. A refused sign-in is not an error: it is a
`Refusal` returned after its failure has been counted and audited (that must commit).
Password hashing and checking (argon2, tens of milliseconds) run outside the write
transaction, which re-reads the credentials under a row lock before deciding, so two
concurrent tries cannot both pass a lock that one of them sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from duban.access import credentials, events, lockout, passwords, sessions, tokens, totp
from duban.access.settings import Security
from duban.access.tokens import Holder as TokenHolder
from duban.engine.model import Event
from duban.errors import RefusedError, UsageError
from duban.logconfig import get_logger
from duban.service.names import normalise
from duban.storage import repository as repo
from duban.storage.tables import CREDENTIALS, USERS

if TYPE_CHECKING:
    from duban.service.app import App

log = get_logger("duban.access")

BAD_CREDENTIALS = "用户名或密码错误"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    unit: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> User:
        return cls(row["name"], row["role"], row["unit"])


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in failed: `reason` for code (bad_credentials, locked, disabled,
    totp_required, totp_invalid, totp_not_set_up), `message` for the person."""

    reason: str
    message: str
    until: datetime | None = None  # when a lock ends


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: sessions.NewSession | None = None  # None: authenticate() starts no session


class Access:
    def __init__(self, app: App, *, hasher: passwords.Hasher | None = None, security: Security | None = None) -> None:
        self.app = app
        self.hasher = hasher or passwords.Hasher()
        self._security = security

    @property
    def security(self) -> Security:
        if self._security is None:
            from duban.access.settings import load

            self._security = load()
        return self._security

    # -- the operator's ------------------------------------------------------------------
    def set_password(self, name: str, password: str, *, via: str = "python") -> dict[str, Any]:
        """Give a user a password (the rule checked first: exit 2, nothing changed). Unlocks
        the user and ends their sessions."""
        passwords.check_rule(password)
        hashed = self.hasher.hash(password)
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            user = credentials.user(conn, normalise(name))["name"]
            credentials.put(conn, user, password_hash=hashed, password_set_at=now, locked_until=None)
            lockout.clear(conn, user)
            ended = sessions.end_all(conn, user, now, "password_set")
            events.write(conn, [events.operator("password_set", now, via, user=user, sessions_ended=ended)])
        log.info("user.password_set", user=user, sessions_ended=ended)
        return {"user": user, "sessions_ended": ended}

    def disable(self, name: str, *, via: str = "python") -> dict[str, Any]:
        """A disabled user can neither sign in nor act; their sessions end, their tokens stop."""
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            user = credentials.user(conn, normalise(name))
            if user["disabled_at"] is not None:
                raise RefusedError(f"用户“{user['name']}”已是停用状态（恢复：duban user enable {user['name']}）")
            conn.execute(update(USERS).where(USERS.c.name == user["name"]).values(disabled_at=now))
            ended = sessions.end_all(conn, user["name"], now, "disabled")
            events.write(conn, [events.operator("user_disabled", now, via, user=user["name"], sessions_ended=ended)])
        log.info("user.disabled", user=user["name"], sessions_ended=ended)
        return {"user": user["name"], "disabled": True, "sessions_ended": ended}

    def enable(self, name: str, *, via: str = "python") -> dict[str, Any]:
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            user = credentials.user(conn, normalise(name))
            if user["disabled_at"] is None:
                raise RefusedError(f"用户“{user['name']}”未被停用，无需恢复")
            conn.execute(update(USERS).where(USERS.c.name == user["name"]).values(disabled_at=None))
            events.write(conn, [events.operator("user_enabled", now, via, user=user["name"])])
        log.info("user.enabled", user=user["name"])
        return {"user": user["name"], "disabled": False}

    def provision_totp(self, name: str, *, via: str = "python") -> dict[str, Any]:
        """A new TOTP secret for the user (the old one stops); its provisioning URI, once."""
        now = self.app.clock.now()
        secret = totp.new_secret()
        with self.app.db.write() as conn:
            user = credentials.user(conn, normalise(name))["name"]
            credentials.put(conn, user, totp_secret=secret, totp_last_step=None)
            events.write(conn, [events.operator("totp_set", now, via, user=user)])
        log.info("user.totp_set", user=user)
        return {"user": user, "uri": totp.uri(secret, user), "issuer": totp.ISSUER}

    def create_token(self, name: str, *, label: str | None = None, expires: str = tokens.DEFAULT_EXPIRY,
                     via: str = "python") -> dict[str, Any]:
        """A new API token for the user; the token is in the answer and nowhere else."""
        lifetime = tokens.lifetime(expires)
        label = self._label(label)
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            user = credentials.user(conn, normalise(name))
            if user["disabled_at"] is not None:
                raise RefusedError(f"用户“{user['name']}”已停用，不能为其创建令牌")
            made = tokens.create(conn, user["name"], label, lifetime, now)
            events.write(conn, [events.operator("token_created", now, via, user=user["name"], token=made.id,
                                                label=label,
                                                expires_at=made.expires_at.isoformat() if made.expires_at else None)])
        log.info("token.created", user=user["name"], token_number=made.id)  # the row number, never the token
        return {"id": made.id, "user": user["name"], "label": label, "expires_at": self._iso(made.expires_at),
                "token": made.token}

    def tokens(self, name: str | None = None) -> list[dict[str, Any]]:
        now = self.app.clock.now()
        with self.app.db.read() as conn:
            user = credentials.user(conn, normalise(name))["name"] if name is not None else None
            rows = tokens.listing(conn, now, user)
        return [{"id": r["id"], "user": r["user_name"], "label": r["label"], "status": r["status"],
                 "status_label": tokens.STATUS_LABELS[r["status"]], "created_at": self._iso(r["created_at"]),
                 "expires_at": self._iso(r["expires_at"]), "revoked_at": self._iso(r["revoked_at"]),
                 "last_used_at": self._iso(r["last_used_at"])} for r in rows]

    def revoke_token(self, number: int, *, via: str = "python") -> dict[str, Any]:
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            row = tokens.revoke(conn, number, now)
            events.write(conn, [events.operator("token_revoked", now, via, user=row["user_name"], token=number)])
        log.info("token.revoked", user=row["user_name"], token_number=number)
        return {"id": number, "user": row["user_name"], "revoked": True}

    # -- signing in ------------------------------------------------------------------------
    def authenticate(self, name: str, password: str, totp_code: str | None = None, *,
                     via: str = "python") -> User | Refusal:
        """The user these credentials prove, or why not (counted, audited)."""
        found = self._sign_in(name, password, totp_code, via, session=False)
        return found.user if isinstance(found, SignedIn) else found

    def sign_in(self, name: str, password: str, totp_code: str | None = None, *,
                via: str = "board") -> SignedIn | Refusal:
        """Authenticate and start a new session (a new random id, whatever came before)."""
        return self._sign_in(name, password, totp_code, via, session=True)

    def session_user(self, sid: str) -> User | None:
        """The user of a live session (its idle clock restarted), or None: unknown, ended,
        idle over 30 min, past 12 h, or its user disabled."""
        return self.fresh_session_user(sid) or self._touch_session(sid)

    def fresh_session_user(self, sid: str) -> User | None:
        """The user of a live session whose idle clock needs no writing (`sessions.TOUCH_STEP`),
        read only; None when anything is to be written or decided (`session_user` does that)."""
        now = self.app.clock.now()
        with self.app.db.read() as conn:
            row = sessions.fresh(conn, sid, now)
            user = repo.get_user(conn, row["user_name"]) if row else None
        return User.of(user) if user is not None and user["disabled_at"] is None else None

    def _touch_session(self, sid: str) -> User | None:
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            row = sessions.touch(conn, sid, now)
            user = repo.get_user(conn, row["user_name"]) if row else None
            if row is not None and (user is None or user["disabled_at"] is not None):
                sessions.end(conn, sid, now, "disabled")
                return None
        return User.of(user) if user else None

    def sign_out(self, sid: str, *, via: str = "board") -> bool:
        """End the session server-side; False if it was not live."""
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            row = sessions.end(conn, sid, now)
            user = repo.get_user(conn, row["user_name"]) if row else None
            if row is not None and user is not None:
                events.write(conn, [events.person("signed_out", user, now, via, session=row["id"])])
        if row is not None:
            log.info("user.signed_out", user=row["user_name"], session_number=row["id"])  # the row, not the cookie
        return row is not None

    csrf_token = staticmethod(sessions.csrf_token)
    csrf_ok = staticmethod(sessions.csrf_ok)

    def token_user(self, token: str) -> User | None:
        """The user a bearer token acts as, or None (unknown, revoked, expired, user disabled)."""
        found = self.token_holder(token)
        if found is not None and found.stale_use:
            self.token_used(found)
        return User.of(found.user) if found is not None else None

    def token_holder(self, token: str) -> TokenHolder | None:
        """`token_user`'s read, alone (the common call writes nothing: `tokens.LAST_USE_STEP`);
        a holder with `stale_use` is to be passed to `token_used`."""
        with self.app.db.read() as conn:
            return tokens.lookup(conn, token, self.app.clock.now())

    def token_used(self, holder: TokenHolder) -> None:
        with self.app.db.write() as conn:
            tokens.mark_used(conn, holder.token_id, self.app.clock.now())

    # -- inside ----------------------------------------------------------------------------
    def _sign_in(self, name: str, password: str, code: str | None, via: str, *, session: bool) -> SignedIn | Refusal:
        typed = normalise(name)
        with self.app.db.read() as conn:
            user = repo.get_user(conn, typed) if typed else None
            cred = credentials.get(conn, typed) if user else None
        stored = cred["password_hash"] if cred else None
        ok = self.hasher.verify(stored, password)  # one argon2 check whoever asks (timing)
        rehash = self.hasher.hash(password) if ok and stored and self.hasher.needs_rehash(stored) else None
        now = self.app.clock.now()
        with self.app.db.write() as conn:
            found, written = self._decide(conn, user, stored, ok, code, now, via, session, rehash)
            events.write(conn, written)
        if isinstance(found, SignedIn):
            log.info("user.signed_in", user=found.user.name, via=via,
                     session_number=found.session.number if found.session else None)
        else:
            log.warning("user.sign_in_refused", user=user["name"] if user else None, reason=found.reason, via=via)
        return found

    def _decide(self, conn: Connection, user: dict[str, Any] | None, verified: str | None, ok: bool,
                code: str | None, now: datetime, via: str, session: bool,
                rehash: str | None) -> tuple[SignedIn | Refusal, list[Event]]:
        if user is None:  # the name typed is not recorded: it may be a password
            return Refusal("bad_credentials", BAD_CREDENTIALS), [
                events.anonymous("sign_in_failed", now, via, reason="unknown_user")]
        name = user["name"]
        cred = conn.execute(select(CREDENTIALS).where(CREDENTIALS.c.user_name == name).with_for_update()).first()
        row = dict(cred._mapping) if cred else None
        until = lockout.locked_until(row, now)
        if until is not None:
            return Refusal("locked", self._locked(until), until), [
                events.anonymous("sign_in_failed", now, via, user=name, reason="locked")]
        if not ok or row is None or row["password_hash"] != verified:  # changed meanwhile: not what was checked
            return self._failed(conn, name, now, via, "no_password" if verified is None else "wrong_password",
                                Refusal("bad_credentials", BAD_CREDENTIALS))
        if user["disabled_at"] is not None:  # said only to someone who knows the password
            return Refusal("disabled", "该用户已停用，不能登录（如需恢复，请联系督查室管理员）"), [
                events.anonymous("sign_in_failed", now, via, user=name, reason="disabled")]
        secret = row["totp_secret"]
        if secret is None and user["role"] in self.security.require_totp:
            return Refusal("totp_not_set_up", f"该角色须使用动态口令登录，但尚未设置（请管理员运行：duban user totp {name}）"), [
                events.anonymous("sign_in_failed", now, via, user=name, reason="totp_not_set_up")]
        if secret is not None:
            if not code:  # the first half of a two-step form: neither a failure nor an event
                return Refusal("totp_required", "请输入动态口令（身份验证器中的 6 位数字）"), []
            step = totp.accepted_step(secret, code, row["totp_last_step"], now)
            if step is None:
                return self._failed(conn, name, now, via, "totp_invalid",
                                    Refusal("totp_invalid", "动态口令不正确或已使用过"))
            credentials.put(conn, name, totp_last_step=step)
        lockout.clear(conn, name)
        if rehash is not None:
            credentials.put(conn, name, password_hash=rehash)
        if not session:
            return SignedIn(User.of(user)), [events.person("signed_in", user, now, via)]
        made = sessions.start(conn, name, now)
        return SignedIn(User.of(user), made), [events.person("signed_in", user, now, via, session=made.number)]

    def _failed(self, conn: Connection, name: str, now: datetime, via: str, reason: str,
                refusal: Refusal) -> tuple[Refusal, list[Event]]:
        written = [events.anonymous("sign_in_failed", now, via, user=name, reason=reason)]
        until = lockout.fail(conn, name, now)
        if until is None:
            return refusal, written
        written.append(events.anonymous("user_locked", now, via, user=name, until=until.isoformat(),
                                        failures=lockout.LIMIT))
        log.warning("user.locked", user=name, until=until.isoformat())
        return Refusal("locked", self._locked(until), until), written

    def _locked(self, until: datetime) -> str:
        return (f"连续 {lockout.LIMIT} 次登录失败，该用户已锁定至 {until.astimezone(self.app.tz):%H:%M}"
                f"（{int(lockout.LOCK.total_seconds() // 60)} 分钟后自动解锁，或由管理员重设密码）")

    def _iso(self, at: datetime | None) -> str | None:
        return at.astimezone(self.app.tz).isoformat() if at else None

    @staticmethod
    def _label(label: str | None) -> str | None:
        if label is None:
            return None
        text = normalise(label)
        if not text:
            return None
        if len(text) > 100 or not text.isprintable():
            raise UsageError("--label：标签最多 100 个字符，且不能含控制字符")
        return text

