"""The consent register: a personal credit report is issued only while the user's consent is on record.

Append-only JSON lines in $SESAME_HOME/service/consents.jsonl (mode 0600), keyed by the pseudonymous user_key.
Each grant or withdrawal is a new line naming who recorded it and the evidence (`reference`, e.g. the id of the
signed consent form); the latest line for a user and purpose decides. Every grant expires: after 90 days unless
stated otherwise, and never later than SESAME_CONSENT_MAX_VALID_DAYS (default 365) after it was recorded.

The register is indexed in memory (the latest line per user and purpose). Each check costs one stat of the file
and reads only what was appended since the last one, so a consent recorded by another process (the CLI, another
worker) counts at once. A line that cannot be read fails closed: every check raises ConsentRegisterError naming the
file and the line, until the file is repaired; recording (a withdrawal above all) still works meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
from pathlib import Path

from sesame.config import positive_env
from sesame.privacy import user_key

PURPOSE = "credit_report"
DEFAULT_VALID_DAYS = 90
MAX_VALID_DAYS = 365  # the default of SESAME_CONSENT_MAX_VALID_DAYS
MAX_VALID_DAYS_VARIABLE = "SESAME_CONSENT_MAX_VALID_DAYS"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class ConsentRegisterError(Exception):
    """A line of the register cannot be read: no consent can be told from its absence, so none counts."""

    def __init__(self, path: Path, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem
        super().__init__(
            f"the consent register {path} is unreadable at line {line}: {problem}; no consent counts "
            "until that line is repaired"
        )

    @property
    def public_message(self) -> str:
        """For API callers: the file's name, not where it lives."""
        return (
            f"the consent register ({self.path.name}) is unreadable at line {self.line}: {self.problem}; no "
            "report is issued until an operator repairs it"
        )


class InvalidValidity(ValueError):
    """A grant's validity out of range: zero, negative (there is no unlimited consent) or beyond the maximum."""


def max_valid_days_from_env() -> int:
    try:
        return positive_env(MAX_VALID_DAYS_VARIABLE, int, MAX_VALID_DAYS, why=": a consent never lasts forever")
    except ValueError as exc:
        raise InvalidValidity(str(exc)) from None


def validity_days(valid_days: int | None, max_days: int) -> int:
    """How long a grant lasts: the default when none is given, never unlimited, never beyond the maximum."""
    if valid_days is None:
        return min(DEFAULT_VALID_DAYS, max_days)
    if valid_days < 1:
        raise InvalidValidity(
            f"a consent must expire: give 1 to {max_days} days, not {valid_days} (there is no unlimited consent)"
        )
    if valid_days > max_days:
        raise InvalidValidity(f"a consent lasts at most {max_days} days ({MAX_VALID_DAYS_VARIABLE}), not {valid_days}")
    return valid_days


def _timestamp(value, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a timestamp")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone")
    return parsed


def parse_entry(raw: bytes) -> dict:
    """One line of the register, checked field by field; ValueError says what is wrong with it."""
    try:
        entry = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON line ({exc})") from None
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    missing = [f for f in ("user_key", "purpose", "granted", "recorded_at", "expires_at") if f not in entry]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(entry["user_key"], str) or not entry["user_key"] or not isinstance(entry["purpose"], str):
        raise ValueError("user_key or purpose is not a string")
    if not isinstance(entry["granted"], bool):
        raise ValueError("granted is neither true nor false")
    _timestamp(entry["recorded_at"], "recorded_at")
    if entry["expires_at"] is not None:
        _timestamp(entry["expires_at"], "expires_at")
    return entry


def expires_at(entry: dict) -> dt.datetime:
    """When a grant ends; one recorded without an end (before consents expired) lasts the default validity."""
    if entry["expires_at"] is not None:
        return dt.datetime.fromisoformat(entry["expires_at"])
    return dt.datetime.fromisoformat(entry["recorded_at"]) + dt.timedelta(days=DEFAULT_VALID_DAYS)


class ConsentRegister:
    def __init__(self, path: Path, user_key_secret: str, max_valid_days: int | None = None):
        self.path = path
        self._secret = user_key_secret
        self.max_valid_days = max_valid_days if max_valid_days is not None else max_valid_days_from_env()
        self._lock = threading.Lock()  # one writer of this process at a time, and one refresh of the index
        self._reset(None)

    def record(
        self,
        user_id: str,
        granted: bool,
        reference: str,
        recorded_by: str,
        valid_days: int | None = None,
        purpose: str = PURPOSE,
    ) -> dict:
        """Append a grant (lasting `valid_days`, by default 90) or a withdrawal; InvalidValidity if out of range."""
        now = _now()
        days = validity_days(valid_days, self.max_valid_days) if granted else None
        entry = {
            "consent_id": f"c_{secrets.token_hex(8)}",
            "user_key": user_key(user_id, self._secret),
            "purpose": purpose,
            "granted": bool(granted),
            "recorded_at": now.isoformat(),
            "recorded_by": recorded_by,
            "reference": reference,
            "expires_at": (now + dt.timedelta(days=days)).isoformat() if days else None,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                # one write of the whole line: a reader in another process never indexes half of it
                if os.write(fd, line) != len(line):
                    raise OSError(f"the consent register {self.path} took only part of a line")
                os.fsync(fd)  # a withdrawal is on disk before it is confirmed
            finally:
                os.close(fd)
        return entry

    def latest(self, user_id: str, purpose: str = PURPOSE) -> dict | None:
        key = user_key(user_id, self._secret)
        with self._lock:
            self._refresh()
            entry = self._latest.get((key, purpose))
        return dict(entry) if entry else None

    def active(self, user_id: str, purpose: str = PURPOSE) -> dict | None:
        """The consent in force now, or None (never given, withdrawn, or expired)."""
        entry = self.latest(user_id, purpose)
        if not entry or not entry["granted"] or expires_at(entry) <= _now():
            return None
        return entry

    # ------------------------------------------------------------------------------------------ the index

    def _reset(self, stamp: tuple | None) -> None:
        self._latest: dict[tuple[str, str], dict] = {}
        self._stamp = stamp  # (inode, size, mtime) of the file when last read
        self._offset = 0  # bytes of it indexed
        self._lines = 0  # lines of it indexed
        self._broken: ConsentRegisterError | None = None

    def _refresh(self) -> None:
        """Bring the index up to date with the file: nothing to read while it is unchanged, the appended lines
        when it grew, all of it when it was replaced, cut or found unreadable before."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._reset(None)
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            if self._broken:  # a fresh error each time: re-raising one would grow its traceback per request
                raise ConsentRegisterError(self._broken.path, self._broken.line, self._broken.problem)
            return
        appended = (
            self._broken is None
            and self._stamp is not None
            and st.st_ino == self._stamp[0]
            and st.st_size >= self._offset
        )
        try:
            fh = open(self.path, "rb")
        except FileNotFoundError:  # removed since the stat
            self._reset(None)
            return
        with fh:
            if not (appended and self._continues(fh)):
                self._reset(None)
            try:
                self._index_from(fh)
            except ConsentRegisterError as exc:
                self._broken = exc
                raise
            finally:
                self._stamp = stamp

    def _continues(self, fh) -> bool:
        """The indexed part still ends where a line ends (a cheap check that it was only appended to)."""
        if self._offset == 0:
            return True
        fh.seek(self._offset - 1)
        return fh.read(1) == b"\n"

    def _index_from(self, fh) -> None:
        fh.seek(self._offset)
        for raw in fh:
            number = self._lines + 1
            if not raw.endswith(b"\n"):
                raise ConsentRegisterError(self.path, number, "the line is cut short (no line end)")
            try:
                entry = parse_entry(raw)
            except ValueError as exc:
                raise ConsentRegisterError(self.path, number, str(exc)) from None
            self._latest[(entry["user_key"], entry["purpose"])] = entry
            self._lines, self._offset = number, self._offset + len(raw)
