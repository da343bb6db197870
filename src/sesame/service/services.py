"""The service's state, opened once per process: the snapshot store, API keys, audit log, consent register and
report-signing keyring, under $SESAME_HOME/service/ (ServiceFiles)."""

from __future__ import annotations

from dataclasses import dataclass

from sesame.config import Settings
from sesame.service.access import KeyStore
from sesame.service.audit import AuditLog
from sesame.service.consent import ConsentRegister
from sesame.service.layout import ServiceFiles, service_files
from sesame.service.reports import Keyring, SigningKey, publish_revocations, valid_days_from_env
from sesame.service.store import SnapshotStore, reload_seconds_from_env


@dataclass
class Services:
    cfg: Settings
    files: ServiceFiles
    store: SnapshotStore
    keys: KeyStore
    audit: AuditLog
    consents: ConsentRegister
    keyring: Keyring
    report_valid_days: int

    @property
    def signing(self) -> SigningKey:
        """The key that signs reports now (a rotation by the CLI counts from the next report on)."""
        return self.keyring.current


def open_services(cfg: Settings, reload_seconds: float | None = None, freeze_gc: bool = False) -> Services:
    files = service_files(cfg)
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = SnapshotStore(
        cfg.published, reload_seconds if reload_seconds is not None else reload_seconds_from_env(), freeze_gc=freeze_gc
    )
    store.refresh()  # serve at once if something is published; the watcher starts with the app
    keyring = Keyring(files)
    publish_revocations(files)  # even when empty: an offline verifier must find one beside the key set
    return Services(
        cfg,
        files,
        store,
        KeyStore(files.api_keys),
        AuditLog(files.audit, cfg.user_key_secret),
        ConsentRegister(files.consents, cfg.user_key_secret),
        keyring,
        valid_days_from_env(),
    )
