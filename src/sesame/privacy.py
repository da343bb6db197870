"""Pseudonymous keys for analysts: user_key is a keyed hash of the upstream id.

    user_key = first 32 hex characters of sha256(SESAME_USER_KEY_SECRET || '|' || user_id)

The warehouse computes the same with the dbt macro `pseudonymize` (dbt/macros/pseudonymize.sql); a test keeps
the two in agreement. Published snapshots for trusted services carry the upstream user_id instead.
"""
from __future__ import annotations

import hashlib


def user_key(user_id: str, secret: str) -> str:
    return hashlib.sha256(f"{secret}|{user_id}".encode("utf-8")).hexdigest()[:32]
