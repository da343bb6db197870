"""The consent register: a personal credit report is issued only while the user's consent is on record.

Append-only JSON lines in $SESAME_HOME/service/consents.jsonl (mode 0600), keyed by the pseudonymous user_key.
Each grant or withdrawal is a new line naming who recorded it and the evidence (`reference`, e.g. the id of the
signed consent form); the latest line for a user and purpose decides. A grant may expire.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
from pathlib import Path

from sesame.privacy import user_key

PURPOSE = "credit_report"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class ConsentRegister:
    def __init__(self, path: Path, user_key_secret: str):
        self.path = path
        self._secret = user_key_secret
        self._lock = threading.Lock()

    def record(self, user_id: str, granted: bool, reference: str, recorded_by: str,
               valid_days: int | None = None, purpose: str = PURPOSE) -> dict:
        now = _now()
        entry = {
            "consent_id": f"c_{secrets.token_hex(8)}",
            "user_key": user_key(user_id, self._secret), "purpose": purpose, "granted": bool(granted),
            "recorded_at": now.isoformat(), "recorded_by": recorded_by, "reference": reference,
            "expires_at": (now + dt.timedelta(days=valid_days)).isoformat() if granted and valid_days else None,
        }
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return entry

    def latest(self, user_id: str, purpose: str = PURPOSE) -> dict | None:
        if not self.path.exists():
            return None
        key = user_key(user_id, self._secret)
        found = None
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                entry = json.loads(line)
                if entry["user_key"] == key and entry["purpose"] == purpose:
                    found = entry
        return found

    def active(self, user_id: str, purpose: str = PURPOSE) -> dict | None:
        """The consent in force now, or None (never given, withdrawn, or expired)."""
        entry = self.latest(user_id, purpose)
        if not entry or not entry["granted"]:
            return None
        if entry["expires_at"] and dt.datetime.fromisoformat(entry["expires_at"]) <= _now():
            return None
        return entry
