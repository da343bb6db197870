"""Pseudonymous keys for analysts: user_key is a keyed hash of the upstream id.

    user_key = first 32 hex characters of sha256(SESAME_USER_KEY_SECRET || '|' || user_id)

The warehouse computes the same with the dbt macro `pseudonymize` (dbt/macros/pseudonymize.sql), a DuckDB query
with `user_keys_sql`; tests keep them in agreement. Published snapshots for trusted services carry the upstream
user_id instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sesame.config import PRIVATE_FOLDERS, private_folders

__all__ = ["PRIVATE_FOLDERS", "keep_private", "user_key", "user_keys_sql"]


def user_key(user_id: str, secret: str) -> str:
    return hashlib.sha256(f"{secret}|{user_id}".encode()).hexdigest()[:32]


def user_keys_sql(ids: str) -> str:
    """A DuckDB query of (user_key, user_id) for the user ids of the relation `ids` (a column user_id), the secret
    given as the parameter $secret: a million keys in half a second, where `user_key` takes about two."""
    return f"select substr(sha256($secret || '|' || user_id), 1, 32) as user_key, user_id from {ids}"


def keep_private(home: Path) -> None:
    """Create the private folders (sesame.config.PRIVATE_FOLDERS), and take back any permission beyond the owner
    (and group, if readable). Owner-only; with SESAME_GROUP_READABLE=1, readable by the folder's group too (give them
    to the readers' group, e.g. `chgrp -R sesame-readers`); never by everyone. What is inside inherits the
    protection: nobody else can pass the folder."""
    group_readable = os.environ.get("SESAME_GROUP_READABLE", "0").lower() in ("1", "true", "yes")
    wanted = 0o750 if group_readable else 0o700
    for folder in private_folders(home):
        folder.mkdir(parents=True, exist_ok=True, mode=wanted)
        if folder.stat().st_mode & 0o777 != wanted:
            os.chmod(folder, wanted)
