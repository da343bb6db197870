"""Where the service keeps its state under $SESAME_HOME."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sesame.config import Settings


@dataclass(frozen=True)
class ServiceFiles:
    root: Path  # $SESAME_HOME/service: private to the service (0700)
    api_keys: Path  # hashed API keys with their scopes
    audit: Path  # append-only audit log
    consents: Path  # the consent register
    issued: Path  # one line per issued report: id, user_key, sha256 of the file
    signing_key: Path  # Ed25519 private key that signs reports now (0600); a retired one is deleted
    keyring: Path  # every signing key's public half, valid-from and retired-at: the copy the service trusts
    revocations: Path  # one line per revoked report: id, when, why (append-only)
    reports_lock: Path  # one writer at a time of the keyring, the issued reports and the revocations
    public_key: Path  # the current public key, published for verifiers
    published_keys: Path  # the key set, published: every key that signed reports
    published_revocations: Path  # the revocation list, published beside the key set


def service_files(cfg: Settings) -> ServiceFiles:
    root = cfg.service_home
    return ServiceFiles(
        root=root,
        api_keys=root / "api_keys.json",
        audit=root / "audit.jsonl",
        consents=root / "consents.jsonl",
        issued=root / "reports_issued.jsonl",
        signing_key=root / "report-signing-key.pem",
        keyring=root / "report-keyring.json",
        revocations=root / "report-revocations.jsonl",
        reports_lock=root / "reports.lock",
        public_key=cfg.published / "report-signing-key.pem",
        published_keys=cfg.published / "report-keys.json",
        published_revocations=cfg.published / "report-revocations.json",
    )
