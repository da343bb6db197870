"""API keys for downstream systems: stored hashed, each with scopes.

A key reads `sk_<key_id>_<secret>`. Only the key id, a random salt and sha256(salt || secret) are stored, in
$SESAME_HOME/service/api_keys.json (mode 0600); the key itself is shown once, when created. The secret is 256
random bits, so a salted SHA-256 cannot be brute-forced; a deliberately slow hash (scrypt) would protect nothing
more here and would add its cost to every request.

Scopes:
    scores:read          a user's score, tier, sub-scores and reason codes
    visa:read            eligibility for every destination;  visa:read:LU  for one destination only
    reports:issue        issue signed personal credit reports (still only with the user's consent)
    consents:write       record or withdraw a user's consent to reports

No key holds both consents:write and reports:issue: such a key could record a consent and then use it itself.
`create` refuses the pair, and a key that holds it anyway (a key file from before the rule, or edited by hand) is
refused with 403 conflicting_scopes on every request until it is revoked and replaced by one key for each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sesame.service.reference import defined_destinations

SCOPES = ("scores:read", "visa:read", "reports:issue", "consents:write")
KEY_PATTERN = re.compile(r"^sk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# Recording a user's consent and issuing that user's report must take two parties.
EXCLUSIVE_SCOPES = frozenset({"consents:write", "reports:issue"})
EXCLUSIVE_RULE = (
    "consents:write and reports:issue may not be held by one key (it could record a consent and "
    "then issue the report itself); create one key for each"
)


def holds_exclusive_pair(scopes) -> bool:
    return EXCLUSIVE_SCOPES <= set(scopes)


class AccessDenied(Exception):
    """401 (no or unknown key) or 403 (valid key without the scope)."""

    def __init__(self, status: int, code: str, message: str, key_id: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.key_id = status, code, message, key_id


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        if scope in self.scopes:
            return True
        # visa:read covers every destination's visa:read:<XX>
        return scope.startswith("visa:read:") and "visa:read" in self.scopes


def validate_scopes(scopes: list[str]) -> list[str]:
    destinations = defined_destinations()
    out = []
    for scope in scopes:
        scope = scope.strip()
        if not scope:
            continue
        if scope.startswith("visa:read:"):
            if scope.split(":", 2)[2] not in destinations:
                raise ValueError(f"unknown destination in scope {scope!r}; known: {sorted(destinations)}")
        elif scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}, visa:read:<DESTINATION>")
        if scope not in out:
            out.append(scope)
    if not out:
        raise ValueError("a key needs at least one scope")
    if holds_exclusive_pair(out):
        raise ValueError(EXCLUSIVE_RULE)
    return out


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def write_private(path: Path, text: str) -> None:
    """Replace a file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


class KeyStore:
    """The key file, re-read when it changes (checked at most once a second), so a revocation takes effect
    in a running service without a restart."""

    def __init__(self, path: Path):
        self.path = path
        self._keys: dict[str, dict] = {}
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        return {k["key_id"]: k for k in json.loads(self.path.read_text(encoding="utf-8"))["keys"]}

    def _fresh(self) -> dict[str, dict]:
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            try:
                st = self.path.stat()
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:
                self._keys, self._stamp = self._read(), stamp
        return self._keys

    def create(self, name: str, scopes: list[str]) -> tuple[str, dict]:
        """Returns (the key, shown only now; its stored record)."""
        scopes = validate_scopes(scopes)
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        record = {
            "key_id": key_id,
            "name": name,
            "scopes": scopes,
            "salt": salt,
            "sha256": _digest(salt, secret),
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "revoked_at": None,
        }
        with self._lock:
            keys = self._read()
            keys[key_id] = record
            write_private(self.path, json.dumps({"keys": list(keys.values())}, indent=1))
            self._checked = 0.0
        return f"sk_{key_id}_{secret}", record

    def revoke(self, key_id: str) -> dict:
        with self._lock:
            keys = self._read()
            if key_id not in keys:
                raise KeyError(key_id)
            keys[key_id]["revoked_at"] = keys[key_id]["revoked_at"] or dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"
            )
            write_private(self.path, json.dumps({"keys": list(keys.values())}, indent=1))
            self._checked = 0.0
            return keys[key_id]

    def list(self) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("salt", "sha256")} for r in self._read().values()]

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise AccessDenied(401, "missing_api_key", "send an API key in the X-API-Key header")
        match = KEY_PATTERN.match(presented.strip())
        record = self._fresh().get(match.group(1)) if match else None
        if record is None or not hmac.compare_digest(record["sha256"], _digest(record["salt"], match.group(2))):
            raise AccessDenied(401, "invalid_api_key", "the API key is not valid")
        if record.get("revoked_at"):
            raise AccessDenied(
                401, "revoked_api_key", f"API key {record['key_id']} was revoked", key_id=record["key_id"]
            )
        if holds_exclusive_pair(record["scopes"]):
            # fail closed: neither scope is granted rather than guessing which one the key was meant to have
            raise AccessDenied(
                403,
                "conflicting_scopes",
                f"API key {record['key_id']} is refused: {EXCLUSIVE_RULE} and revoke this one",
                key_id=record["key_id"],
            )
        return Principal(record["key_id"], record.get("name", ""), frozenset(record["scopes"]))
