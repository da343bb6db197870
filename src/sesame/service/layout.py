"""Where the service keeps its state under $SESAME_HOME."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sesame.config import Settings


@dataclass(frozen=True)
class ServiceFiles:
    root: Path          # $SESAME_HOME/service: private to the service (0700)
    api_keys: Path      # hashed API keys with their scopes
    audit: Path         # append-only audit log
    consents: Path      # the consent register
    issued: Path        # one line per issued report: id, user_key, sha256 of the file
    signing_key: Path   # Ed25519 private key of report signatures (0600)
    public_key: Path    # its public half, published for verifiers


def service_files(cfg: Settings) -> ServiceFiles:
    root = cfg.home / "service"
    return ServiceFiles(root=root, api_keys=root / "api_keys.json", audit=root / "audit.jsonl",
                        consents=root / "consents.jsonl", issued=root / "reports_issued.jsonl",
                        signing_key=root / "report-signing-key.pem",
                        public_key=cfg.published / "report-signing-key.pem")
