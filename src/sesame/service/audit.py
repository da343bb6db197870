"""Append-only audit log of the service: who (API key id, never the key) looked up whom (the pseudonymous
user_key, never the upstream id), when, and the outcome. One JSON object per line in
$SESAME_HOME/service/audit.jsonl (mode 0600), opened for append only.

    {"at": "2026-11-24T08:00:00.123Z", "key_id": "3f2a9c0b1d4e", "action": "scores.lookup",
     "user_key": "9c1e...", "destination": null, "status": 200, "outcome": "found"}
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from sesame.privacy import user_key


class AuditLog:
    def __init__(self, path: Path, user_key_secret: str):
        self.path = path
        self._secret = user_key_secret
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")

    def record(self, *, key_id: str | None, action: str, status: int, outcome: str, user_id: str | None = None,
               destination: str | None = None, **extra) -> None:
        entry = {
            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "key_id": key_id, "action": action,
            "user_key": user_key(user_id, self._secret) if user_id is not None else None,
            "destination": destination, "status": status, "outcome": outcome, **extra,
        }
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()  # each entry reaches the file before the response leaves

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_entries(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
