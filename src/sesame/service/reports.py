"""The personal credit report: what a consulate accepts as proof of financial capability.

For one user: who the report is about (the name as registered and the identity document masked to its last four
characters, from the night's KYC snapshot, published as the restricted `identities` dataset, and whether the
identity was verified), score, tier, the five factor sub-scores, reason codes, the score of recent months, the rule
versions of the destinations the user qualifies for, the issue time, the end of its validity
(SESAME_REPORT_VALID_DAYS after issue, default 90), the signing key's id and a report id; as HTML or PDF. A report
binds a person only if it names one: a user without a registered name and document on record gets none.

Signature. The issued file's bytes are signed with Ed25519 and the signature is appended as a last line, which
HTML and PDF readers both ignore (an HTML comment after </html>, a PDF comment after %%EOF):

    <!-- sesame-signature v2 report=<id> key=<key id> issued=<UTC> until=<UTC> ed25519=<base64> -->     (HTML)
    %sesame-signature v2 report=<id> key=<key id> issued=<UTC> until=<UTC> ed25519=<base64>              (PDF)

The signed message is every byte of the file up to and including "ed25519=", so the report id, key id, issue time
and validity in that line are covered too. Any change to the file fails verification. A v1 line (before reports
stated their validity) has no `until`: such a report lasts the default validity from its issue.

Keys. The signing keys form a keyring: `sesame credit-report rotate-key` makes a new key that signs from then on;
the one before is retired (its private half deleted, its public half kept). The key set, every key with its
valid-from and retired-at, is published as published/report-keys.json (and at GET /v1/reports/keys); the current
public key also as published/report-signing-key.pem (GET /v1/reports/public-key). The key id is the first 16 hex
characters of sha256 of the raw public key.

Revocation. Withdrawing a user's consent revokes every report issued for the user; a new report supersedes (revokes)
the user's earlier ones. The revocation list is published beside the key set (published/report-revocations.json).

Verification (`verify_document()`, `sesame credit-report verify FILE`, POST /v1/reports/verify) answers `valid`,
`expired`, `revoked` or `invalid`, offline too, with the two published files.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import markupsafe
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sesame import FACTORS, snapshots
from sesame.config import positive_env
from sesame.durable import write_atomic
from sesame.scale import score_to_odds
from sesame.service.access import write_private
from sesame.service.layout import ServiceFiles
from sesame.service.store import Served

FACTOR_LABELS = {
    "credit_history": "Credit history",
    "behavior_preference": "Behavioral preference",
    "fulfillment_capacity": "Fulfillment capacity",
    "identity_traits": "Identity traits",
    "social_connections": "Social connections",
}
HISTORY_MONTHS = 12
SIGNATURE_PREFIX = b"sesame-signature v2 "
_TRAILER = re.compile(
    rb"(?:<!-- |%)sesame-signature v(?P<version>[12]) report=(?P<report>[A-Z0-9-]{1,40}) key=(?P<key>[0-9a-f]{16}) "
    rb"issued=(?P<issued>[0-9TZ:-]{20})(?: until=(?P<until>[0-9TZ:-]{20}))? "
    rb"ed25519=(?P<sig>[A-Za-z0-9+/]{86}==)(?: -->)?\n\Z"
)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_VALID_DAYS = 90
VALID_DAYS_VARIABLE = "SESAME_REPORT_VALID_DAYS"
# A report signed by a key after its retirement is forged with a leaked key, unless it was being built while the
# key was rotated: a build takes seconds, this is ample.
RETIRED_KEY_GRACE = dt.timedelta(minutes=10)
STATUSES = ("valid", "expired", "revoked", "invalid")


class ReportError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------------------------------------------ keys


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    key_id: str
    public_pem: bytes


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def format_time(at: dt.datetime) -> str:
    return at.strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


def valid_days_from_env() -> int:
    """How long a report is valid after its issue: SESAME_REPORT_VALID_DAYS, default 90, at least 1."""
    return positive_env(VALID_DAYS_VARIABLE, int, DEFAULT_VALID_DAYS)


@contextlib.contextmanager
def reports_lock(files: ServiceFiles):
    """One writer at a time of the keyring, the issued-report register and the revocations, across the service's
    workers and the CLI."""
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(files.reports_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _stamp(*paths: Path) -> tuple:
    """What changes when any of the files is replaced or written."""
    stamps = []
    for path in paths:
        try:
            st = os.stat(path)
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            stamps.append(None)
    return tuple(stamps)


# ------------------------------------------------------------------------------------------------ key set


@dataclass(frozen=True)
class PublicKeyEntry:
    key_id: str
    public: Ed25519PublicKey
    public_pem: bytes
    valid_from: str | None
    retired_at: str | None = None

    def to_json(self) -> dict:
        return {
            "key_id": self.key_id,
            "algorithm": "Ed25519",
            "public_key": self.public_pem.decode(),
            "valid_from": self.valid_from,
            "retired_at": self.retired_at,
        }


class KeySet:
    """The public keys that verify reports, by key id: the current one and every retired one."""

    def __init__(self, entries: list[PublicKeyEntry]):
        self.entries = {e.key_id: e for e in entries}

    @classmethod
    def single(cls, public_key: Ed25519PublicKey) -> KeySet:
        return cls([PublicKeyEntry(key_id_of(public_key), public_key, public_pem(public_key), None)])

    @classmethod
    def from_json(cls, data: dict) -> KeySet:
        """A published key set; ValueError if a key id does not belong to its public key."""
        entries = []
        for item in data.get("keys", []):
            public = load_public_key(item["public_key"].encode())
            if key_id_of(public) != item["key_id"]:
                raise ValueError(f"key {item['key_id']}: the id is not that of its public key")
            entries.append(
                PublicKeyEntry(
                    item["key_id"], public, public_pem(public), item.get("valid_from"), item.get("retired_at")
                )
            )
        return cls(entries)

    @classmethod
    def read(cls, path: Path) -> KeySet:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def get(self, key_id: str) -> PublicKeyEntry | None:
        return self.entries.get(key_id)

    def to_json(self) -> dict:
        current = [e.key_id for e in self.entries.values() if e.retired_at is None]
        return {"current": current[-1] if current else None, "keys": [e.to_json() for e in self.entries.values()]}


# ------------------------------------------------------------------------------------------------ keyring


def _load_private(path: Path) -> SigningKey:
    """The current private key, made on first use and readable by its owner only."""
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
    else:
        private = _write_new_private(path)
    public = private.public_key()
    return SigningKey(private, public, key_id_of(public), public_pem(public))


def _write_new_private(path: Path) -> Ed25519PrivateKey:
    private = Ed25519PrivateKey.generate()
    write_private(
        path,
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    return private


def _read_keyring(path: Path) -> KeySet:
    return KeySet.read(path) if path.exists() else KeySet([])


def _enrol(keys: KeySet, key: SigningKey) -> KeySet:
    """The key set with `key` as the one current key: every other key still open is retired now. This one step
    makes the first key, takes in the key of an installation from before the keyring, and finishes a rotation
    cut off between the new private key and the keyring."""
    now = format_time(_now())
    entries = [
        e if e.retired_at else PublicKeyEntry(e.key_id, e.public, e.public_pem, e.valid_from, now)
        for e in keys.entries.values()
    ]
    return KeySet(entries + [PublicKeyEntry(key.key_id, key.public, key.public_pem, now)])


def _publish_keys(files: ServiceFiles, keys: KeySet, key: SigningKey) -> None:
    text = json.dumps(keys.to_json(), indent=1) + "\n"
    if not files.published_keys.exists() or files.published_keys.read_text(encoding="utf-8") != text:
        write_atomic(files.published_keys, text)
    if not files.public_key.exists() or files.public_key.read_bytes() != key.public_pem:
        write_atomic(files.public_key, key.public_pem.decode())


def open_keyring(files: ServiceFiles) -> tuple[SigningKey, KeySet]:
    """The current signing key and the key set (the service's own copy, service/report-keyring.json, is the one it
    trusts); both published."""
    with reports_lock(files):
        key = _load_private(files.signing_key)
        keys = _read_keyring(files.keyring)
        found = keys.get(key.key_id)
        if found is not None and found.retired_at:
            raise ValueError(
                f"{files.signing_key}: key {key.key_id} was retired at {found.retired_at} and signs "
                "no more; run `sesame credit-report rotate-key`"
            )
        if found is None:
            keys = _enrol(keys, key)
            write_private(files.keyring, json.dumps(keys.to_json(), indent=1) + "\n")
        _publish_keys(files, keys, key)
    return key, keys


def rotate_key(files: ServiceFiles) -> tuple[str, SigningKey]:
    """A new signing key from now on; returns the retired key's id and the new key. The retired private key is
    deleted (replaced): it never signs again, and kept it would only let whoever took a copy of service/ sign
    backdated reports. Its public half stays in the key set and keeps verifying what it signed."""
    old, _ = open_keyring(files)
    with reports_lock(files):
        _write_new_private(files.signing_key)  # first: a crash before the keyring is finished by open_keyring
    new, _ = open_keyring(files)
    return old.key_id, new


class Keyring:
    """The service's view of the keyring, read again when the private key or the keyring file changes (a rotation
    by the CLI takes effect in a running service at its next report)."""

    def __init__(self, files: ServiceFiles):
        self.files = files
        self._lock = threading.Lock()  # the worker threads see a key and its set from the same reading
        self._stamp = None
        self._refresh()

    def _refresh(self) -> tuple[SigningKey, KeySet]:
        with self._lock:
            stamp = _stamp(self.files.signing_key, self.files.keyring)
            if stamp != self._stamp:
                self._current, self._keys = open_keyring(self.files)
                self._stamp = _stamp(self.files.signing_key, self.files.keyring)
            return self._current, self._keys

    @property
    def current(self) -> SigningKey:
        return self._refresh()[0]

    @property
    def keys(self) -> KeySet:
        return self._refresh()[1]


# --------------------------------------------------------------------------------------------- revocation


@dataclass(frozen=True)
class Revocation:
    report_id: str
    revoked_at: str
    reason: str  # consent_withdrawn or superseded
    superseded_by: str | None = None

    def to_json(self) -> dict:
        return {
            "report_id": self.report_id,
            "revoked_at": self.revoked_at,
            "reason": self.reason,
            "superseded_by": self.superseded_by,
        }


class RevocationList:
    def __init__(self, entries: list[Revocation]):
        self.entries = {e.report_id: e for e in entries}

    @classmethod
    def from_json(cls, data: dict) -> RevocationList:
        return cls(
            [
                Revocation(e["report_id"], e["revoked_at"], e["reason"], e.get("superseded_by"))
                for e in data.get("revoked", [])
            ]
        )

    @classmethod
    def read(cls, path: Path) -> RevocationList:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    def get(self, report_id: str | None) -> Revocation | None:
        return self.entries.get(report_id) if report_id else None

    def to_json(self) -> dict:
        return {"revoked": [e.to_json() for e in self.entries.values()]}


def read_revocations(files: ServiceFiles) -> RevocationList:
    """The service's own register (service/report-revocations.jsonl, append-only)."""
    if not files.revocations.exists():
        return RevocationList([])
    with open(files.revocations, encoding="utf-8") as fh:
        return RevocationList([Revocation(**json.loads(line)) for line in fh if line.strip()])


def publish_revocations(files: ServiceFiles) -> RevocationList:
    """The whole list, replaced atomically beside the key set (an empty list too: an offline verifier needs to
    know that nothing is revoked)."""
    revoked = read_revocations(files)
    text = json.dumps(revoked.to_json(), indent=1) + "\n"
    if not files.published_revocations.exists() or files.published_revocations.read_text(encoding="utf-8") != text:
        write_atomic(files.published_revocations, text)
    return revoked


def _issued_to(files: ServiceFiles, user_key: str) -> list[str]:
    if not files.issued.exists():
        return []
    with open(files.issued, encoding="utf-8") as fh:
        return [e["report_id"] for line in fh if line.strip() and (e := json.loads(line))["user_key"] == user_key]


def _revoke_locked(files: ServiceFiles, user_key: str, reason: str, superseded_by: str | None = None) -> list[str]:
    """Revoke the user's reports not revoked yet (but the one that supersedes them); the caller holds the lock."""
    already = read_revocations(files)
    ids = [r for r in _issued_to(files, user_key) if r != superseded_by and already.get(r) is None]
    if ids:
        now = format_time(_now())
        lines = "".join(json.dumps(Revocation(r, now, reason, superseded_by).to_json()) + "\n" for r in ids)
        _append_durably(files.revocations, lines)
        publish_revocations(files)
    return ids


def revoke_user_reports(files: ServiceFiles, user_key: str) -> list[str]:
    """A withdrawn consent: every report issued for the user is revoked; returns their ids."""
    with reports_lock(files):
        return _revoke_locked(files, user_key, "consent_withdrawn")


def register_issued(files: ServiceFiles, entry: dict, still_consented) -> list[str] | None:
    """Register a signed report and revoke the user's earlier ones as superseded; returns their ids.
    `still_consented()` is asked under the lock: a withdrawal revokes under it too, so a report is either
    registered before a withdrawal's revocation (and revoked by it) or refused (None)."""
    with reports_lock(files):
        if not still_consented():
            return None
        _append_durably(files.issued, json.dumps(entry) + "\n")
        return _revoke_locked(files, entry["user_key"], "superseded", superseded_by=entry["report_id"])


def _append_durably(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = text.encode("utf-8")
        if os.write(fd, data) != len(data):
            raise OSError(f"{path} took only part of a write")
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- content


def score_history(
    user_id: str,
    published: Path,
    warehouse: Path | None,
    user_key: str | None,
    until: str,
    months: int = HISTORY_MONTHS,
) -> list[dict]:
    """The score at the last scored night of each of the recent months: from the warehouse (every night, by
    user_key) when there is one, and from the retained published snapshots (by user_id)."""
    import pyarrow.dataset as pads  # here, not at the top: it pulls in pandas, a second of the service's start

    nights: dict[str, tuple[int, str]] = {}
    end = dt.date.fromisoformat(until)
    first = end.year * 12 + end.month - 1 - (months - 1)  # the first of the `months` calendar months
    since = dt.date(first // 12, first % 12 + 1, 1)
    if warehouse is not None and user_key and warehouse.exists():
        import duckdb

        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                rows = con.execute(
                    "select cast(ds as varchar), score, tier from marts.sesame_scores "
                    "where user_key = ? and ds between ? and ?",
                    [user_key, since, until],
                ).fetchall()
            nights.update({ds: (int(score), tier) for ds, score, tier in rows})
        except duckdb.Error:
            pass  # no marts yet: the published snapshots still give the recent nights
    for ds, night in sorted(snapshots.published_nights(published).items()):
        if not (since.isoformat() <= ds <= until) or "sesame_scores" not in night.get("datasets", {}):
            continue
        folder = published / "sesame_scores" / night["datasets"]["sesame_scores"]["snapshot"]
        if not (folder / "_manifest.json").exists():
            continue  # removed by retention: the warehouse above still has the night
        manifest = snapshots.read_manifest(folder)
        data = pads.dataset([str(folder / f["path"]) for f in manifest["files"]], format="parquet")
        found = data.to_table(columns=["score", "tier"], filter=pads.field("user_id") == user_id).to_pylist()
        if found:
            nights[ds] = (int(found[0]["score"]), found[0]["tier"])
    by_month: dict[str, dict] = {}
    for ds in sorted(nights):
        score, tier = nights[ds]
        by_month[ds[:7]] = {"month": ds[:7], "ds": ds, "score": score, "tier": tier}
    return list(by_month.values())[-months:]


def build_report(
    served: Served,
    user_id: str,
    published: Path,
    warehouse: Path | None,
    user_key: str | None,
    now: dt.datetime | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
) -> dict:
    if served.scores is None:
        raise ReportError(503, "not_ready", "no score snapshot is loaded yet")
    nights = {(idx.info.ds, idx.info.run_id) for idx in served.indexes().values()}
    if len(nights) > 1:  # a signed report states one night's facts, never a score and a visa list of two
        raise ReportError(
            503,
            "mixed_night",
            "the loaded scores and visa lists are of different nights "
            f"({', '.join(f'{ds} run {run}' for ds, run in sorted(nights))}); no report is issued "
            "until one night is loaded whole",
        )
    found = served.scores.get(user_id)
    if found is None:
        raise ReportError(404, "user_not_found", f"no score for user {user_id} in the current snapshot")
    person = served.identities.get(user_id) if served.identities is not None else None
    if person is None or not person["registered_name"] or not person["id_document_masked"]:
        raise ReportError(
            409,
            "identity_unavailable",
            f"user {user_id} has no registered name and identity document "
            "on record in the night's KYC snapshot; a report that cannot name its holder is not issued",
        )
    now = (now or _now()).replace(microsecond=0)
    ds = served.scores.info.ds
    rules = served.visa_rules()
    qualifying = []
    if served.visa is not None:
        for destination, listing in sorted(served.visa.by_destination.items()):
            hit = listing.get(user_id)
            if hit:
                rule = rules.get(destination)
                qualifying.append(
                    {
                        "destination": destination,
                        "rule_version": hit["rule_version"],
                        "min_score": rule.min_score if rule else None,
                    }
                )
    return {
        "report_id": f"SR-{now:%Y%m%d}-{secrets.token_hex(5).upper()}",
        "issued_at": format_time(now),
        "valid_until": format_time(now + dt.timedelta(days=valid_days)),
        "user_id": user_id,
        "holder": {
            "name": person["registered_name"],
            "id_document_type": person["id_document_type"],
            "id_document_masked": person["id_document_masked"],
            "identity_verified": bool(person["identity_verified"]),
            "kyc_as_of": person["profile_ds"],
        },
        "score_date": ds,
        "score": found["score"],
        "tier": found["tier"],
        "odds_good_to_bad": round(score_to_odds(found["score"]), 1),
        "model_version": found["model_version"],
        "sub_scores": [{"factor": f, "label": FACTOR_LABELS[f], "score": found["sub_scores"][f]} for f in FACTORS],
        "reason_codes": served.explain_codes(found["reason_codes"]),
        "history": score_history(user_id, published, warehouse, user_key, ds),
        "qualifying_destinations": qualifying,
        "visa_snapshot": served.visa.info.snapshot if served.visa is not None else None,
        "score_snapshot": served.scores.info.snapshot,
    }


# -------------------------------------------------------------------------------------------- rendering

_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sesame personal credit report {{ r.report_id }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; max-width: 46em; margin: 2em auto; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0; } .sub { color: #666; margin-top: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
td, th { padding: .25em .8em; text-align: left; border-bottom: 1px solid #ddd; }
.score { font-size: 2.6em; font-weight: bold; } footer { color: #666; font-size: .85em; }
</style></head>
<body>
<h1>Sesame personal credit report</h1>
<p class="sub">Report {{ r.report_id }} &middot; issued {{ r.issued_at }} &middot; valid until {{ r.valid_until }}
&middot; signed with key {{ key_id }}</p>
<h2>Holder</h2>
<table>
<tr><th>Name (as registered)</th><td>{{ r.holder.name }}</td></tr>
<tr><th>Identity document</th><td>{{ r.holder.id_document_type }} {{ r.holder.id_document_masked }}</td></tr>
<tr><th>Identity verified</th><td>{{ "yes (ID document and face checks passed)" if r.holder.identity_verified
else "no" }}, as of {{ r.holder.kyc_as_of }}</td></tr>
<tr><th>User id</th><td>{{ r.user_id }}</td></tr>
</table>
<table>
<tr><th>Score date</th><td>{{ r.score_date }}</td></tr>
<tr><th>Score</th><td><span class="score">{{ r.score }}</span> of 350&ndash;950</td></tr>
<tr><th>Tier</th><td>{{ r.tier }}</td></tr>
<tr><th>Good:bad odds</th>
<td>about {{ r.odds_good_to_bad }}:1 (600 means 19:1; every 50 points double the odds)</td></tr>
<tr><th>Model version</th><td>{{ r.model_version }}</td></tr>
</table>
<h2>Factor sub-scores (0&ndash;100)</h2>
<table>{% for s in r.sub_scores %}
<tr><th>{{ s.label }}</th><td>{{ "%.1f"|format(s.score) if s.score is not none else "not scored: no such characteristic for people without a credit file" }}</td></tr>{% endfor %}
</table>
<h2>Reason codes</h2>
{% if r.reason_codes %}<table><tr><th>Code</th><th>Reason</th><th>原因</th></tr>
{% for c in r.reason_codes %}
<tr><td>{{ c.code }}</td><td>{{ c.description_en }}</td><td>{{ c.description_zh }}</td></tr>{% endfor %}
</table>{% else %}<p>None: no factor falls notably below the average.</p>{% endif %}
<h2>Score history</h2>
<table><tr><th>Month</th><th>Night</th><th>Score</th><th>Tier</th></tr>
{% for h in r.history %}
<tr><td>{{ h.month }}</td><td>{{ h.ds }}</td><td>{{ h.score }}</td><td>{{ h.tier }}</td></tr>{% endfor %}
</table>
<h2>Visa destinations the user qualifies for</h2>
{% if r.qualifying_destinations %}<table><tr><th>Destination</th><th>Rule version</th><th>Minimum score</th></tr>
{% for d in r.qualifying_destinations %}
<tr><td>{{ d.destination }}</td><td>{{ d.rule_version }}</td><td>{{ d.min_score }}</td></tr>{% endfor %}
</table>{% else %}<p>None on the score date.</p>{% endif %}
<footer><p>This document is signed (Ed25519) with the Sesame key {{ key_id }}. Verify it, unchanged, with the
published key set and revocation list: <code>sesame credit-report verify FILE --keys report-keys.json --revocations
report-revocations.json</code>, or by sending it to the verification endpoint of the Sesame score service
(POST /v1/reports/verify). Any change to this file makes verification fail; after {{ r.valid_until }}, or once
revoked, it is no longer valid. It is about the holder named above only: compare the name and the last four
characters of the identity document with the document the bearer presents.</p></footer>
<script type="application/json" id="sesame-report">{{ payload }}</script>
</body></html>
""")


def render_html(report: dict, key_id: str) -> bytes:
    # The machine-readable copy: JSON with "<" escaped so that it cannot close the script element.
    payload = markupsafe.Markup(json.dumps(report, ensure_ascii=False).replace("<", "\\u003c"))
    return _HTML.render(r=report, key_id=key_id, payload=payload).encode("utf-8")


def _latin1(text: str) -> str:
    """The PDF uses the built-in Helvetica, which has Latin-1 glyphs only."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(report: dict, key_id: str) -> bytes:
    from fpdf import FPDF

    issued = parse_time(report["issued_at"])
    pdf = FPDF(format="A4")
    pdf.set_creation_date(issued)
    pdf.set_title(f"Sesame personal credit report {report['report_id']}")
    pdf.set_author("Sesame")
    pdf.set_creator("Sesame score service")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()

    def heading(text: str) -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)

    def table(rows: list[list[str]], widths: tuple[int, ...], header: bool = True) -> None:
        with pdf.table(col_widths=widths, first_row_as_headings=header, text_align="LEFT", line_height=6) as t:
            for row in rows:
                r = t.row()
                for value in row:
                    r.cell(_latin1(str(value)))

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, "Sesame personal credit report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(
        0,
        6,
        _latin1(
            f"Report {report['report_id']} - issued {report['issued_at']} - valid until "
            f"{report['valid_until']} - signed with key {key_id}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("Helvetica", "", 10)
    pdf.ln(2)
    holder = report["holder"]
    heading("Holder")
    table(
        [
            ["Name (as registered)", holder["name"]],
            ["Identity document", f"{holder['id_document_type']} {holder['id_document_masked']}"],
            [
                "Identity verified",
                f"{'yes (ID document and face checks passed)' if holder['identity_verified'] else 'no'}"
                f", as of {holder['kyc_as_of']}",
            ],
            ["User id", report["user_id"]],
        ],
        (30, 70),
        header=False,
    )
    pdf.ln(2)
    table(
        [
            ["Score date", report["score_date"]],
            ["Score", f"{report['score']} (of 350-950)"],
            ["Tier", report["tier"]],
            ["Good:bad odds", f"about {report['odds_good_to_bad']}:1 (600 means 19:1; +50 points double the odds)"],
            ["Model version", report["model_version"]],
        ],
        (30, 70),
        header=False,
    )
    heading("Factor sub-scores (0-100)")
    table(
        [["Factor", "Sub-score"]]
        + [[s["label"], "not scored" if s["score"] is None else f"{s['score']:.1f}"] for s in report["sub_scores"]],
        (60, 40),
    )
    heading("Reason codes")
    if report["reason_codes"]:
        table([["Code", "Reason"]] + [[c["code"], c["description_en"]] for c in report["reason_codes"]], (15, 85))
    else:
        pdf.multi_cell(0, 6, "None: no factor falls notably below the average.", new_x="LMARGIN", new_y="NEXT")
    heading("Score history")
    table(
        [["Month", "Night", "Score", "Tier"]]
        + [[h["month"], h["ds"], h["score"], h["tier"]] for h in report["history"]],
        (20, 30, 20, 30),
    )
    heading("Visa destinations the user qualifies for")
    if report["qualifying_destinations"]:
        table(
            [["Destination", "Rule version", "Minimum score"]]
            + [[d["destination"], d["rule_version"], d["min_score"]] for d in report["qualifying_destinations"]],
            (30, 40, 30),
        )
    else:
        pdf.multi_cell(0, 6, "None on the score date.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(
        0,
        4.5,
        _latin1(
            f"This document is signed (Ed25519) with the Sesame key {key_id}. Verify it, unchanged, with the published "
            "key set and revocation list: `sesame credit-report verify FILE --keys report-keys.json --revocations "
            "report-revocations.json`, or by sending it to the verification endpoint of the Sesame score service "
            "(POST /v1/reports/verify). Any change to this file makes verification fail; after "
            f"{report['valid_until']}, or once revoked, it is no longer valid. It is about the holder named above only: "
            "compare the name and the last four characters of the identity document with the document the bearer "
            "presents."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.embed_file(
        bytes=json.dumps(report, ensure_ascii=False, indent=1).encode("utf-8"),
        basename=f"{report['report_id']}.json",
        desc="the report's contents, machine-readable",
        modification_date=issued,
        creation_date=issued,
    )
    return bytes(pdf.output())


# ------------------------------------------------------------------------------------- sign and verify


def sign_document(
    document: bytes, fmt: str, report_id: str, issued_at: str, valid_until: str, key: SigningKey
) -> bytes:
    body = document if document.endswith(b"\n") else document + b"\n"
    opener = b"<!-- " if fmt == "html" else b"%"
    head = (
        opener
        + SIGNATURE_PREFIX
        + f"report={report_id} key={key.key_id} issued={issued_at} until={valid_until} ed25519=".encode()
    )
    signature = base64.b64encode(key.private.sign(body + head))
    return body + head + signature + (b" -->\n" if fmt == "html" else b"\n")


@dataclass
class Verification:
    valid: bool
    reason: str
    format: str | None = None
    report_id: str | None = None
    key_id: str | None = None
    issued_at: str | None = None
    sha256: str | None = None
    report: dict | None = field(default=None, repr=False)
    status: str = "invalid"  # valid, expired, revoked or invalid
    valid_until: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None  # consent_withdrawn or superseded

    def conclude(self, status: str, reason: str) -> Verification:
        self.status, self.reason, self.valid = status, reason, status == "valid"
        return self


def _format_of(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "pdf"
    return "html" if data.lstrip()[:15].lower().startswith(b"<!doctype html") else None


def _signed_times(match: re.Match) -> tuple[dt.datetime, dt.datetime]:
    """Issue time and end of validity; ValueError if the line does not state them as its version must."""
    issued = parse_time(match.group("issued").decode())
    until = match.group("until")
    if (match.group("version") == b"2") != (until is not None):
        raise ValueError("a v2 signature states its validity, a v1 signature does not")
    return issued, parse_time(until.decode()) if until else issued + dt.timedelta(days=DEFAULT_VALID_DAYS)


def _not_in_set(key_id: str, keys: KeySet) -> str:
    ids = sorted(keys.entries)
    given = f"the given public key {ids[0]}" if len(ids) == 1 else f"the given public keys ({', '.join(ids)})"
    return f"signed with key {key_id}, not with {given}"


def _check_signature(data: bytes, keys: KeySet) -> Verification:
    """The file's signature against the key set: `valid` only means the bytes are as a key of the set signed them."""
    fmt = _format_of(data)
    if fmt is None:
        return Verification(False, "not a Sesame report: neither a PDF nor an HTML document")
    match = _TRAILER.search(data[-400:])
    if match is None or not (match.group(0).startswith(b"<!-- ") == (fmt == "html")):
        return Verification(False, "no Sesame signature at the end of the document", fmt)
    start = len(data) - min(len(data), 400) + match.start("sig")
    report_id, key_id, issued = (match.group(g).decode() for g in ("report", "key", "issued"))
    found = Verification(False, "", fmt, report_id, key_id, issued, hashlib.sha256(data).hexdigest())
    entry = keys.get(key_id)
    if entry is None:
        return found.conclude("invalid", _not_in_set(key_id, keys))
    try:
        entry.public.verify(base64.b64decode(match.group("sig")), data[:start])
        issued_at, valid_until = _signed_times(match)
    except (InvalidSignature, ValueError):
        return found.conclude(
            "invalid", "the signature does not match the document: it was altered after it was issued"
        )
    found.valid_until = format_time(valid_until)
    if entry.retired_at and issued_at > parse_time(entry.retired_at) + RETIRED_KEY_GRACE:
        return found.conclude("invalid", f"signed with key {key_id} after its retirement at {entry.retired_at}")
    found.report = _embedded_report(data) if fmt == "html" else None
    return found.conclude("valid", "signature valid: the document is unchanged since Sesame issued it")


def _embedded_report(data: bytes) -> dict | None:
    embedded = re.search(rb'<script type="application/json" id="sesame-report">(.*?)</script>', data, re.S)
    return json.loads(embedded.group(1).decode("utf-8")) if embedded else None


def verify_document(
    data: bytes,
    keys: KeySet | Ed25519PublicKey,
    revocations: RevocationList | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Check a report file exactly as received: `status` is valid, expired, revoked or invalid and `reason` says
    why; `valid` is true for `valid` only. Offline: needs only the published key set (or one public key) and the
    published revocation list (without one, no revocation can be seen)."""
    found = _check_signature(data, keys if isinstance(keys, KeySet) else KeySet.single(keys))
    if found.status == "invalid":
        return found
    revoked = (revocations or RevocationList([])).get(found.report_id)
    if revoked is not None:
        found.revoked_at, found.revocation_reason = revoked.revoked_at, revoked.reason
        why = (
            "the user's consent was withdrawn"
            if revoked.reason == "consent_withdrawn"
            else f"superseded by report {revoked.superseded_by}"
            if revoked.superseded_by
            else revoked.reason
        )
        return found.conclude("revoked", f"revoked at {revoked.revoked_at}: {why}")
    if (now or _now()) >= parse_time(found.valid_until):
        return found.conclude("expired", f"the signature is valid but the report expired at {found.valid_until}")
    return found.conclude(
        "valid",
        f"signature valid, not revoked, valid until {found.valid_until}: the document "
        "is unchanged since Sesame issued it",
    )
