"""The published snapshots the service answers from, held in memory and swapped whole when NIGHT moves.

A watcher thread looks at published/NIGHT every few seconds (one stat call when nothing changed). When it names a
new night, each dataset's snapshot is read into memory, every file checked against the manifest's row count and
sha256 (on the very bytes that are then parsed, so what is served is what was verified), indexed by user_id, and
only then are all of them swapped in together by one reference assignment. Requests take that reference once, so a
request sees one consistent night and never a half-loaded one or two nights mixed. A night whose snapshots fail to
load is not served: the previous night stays whole, and the failure shows on /v1/health.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sesame import FACTORS
from sesame.contracts import VISA_CONDITIONS, major_of
from sesame.service.reference import ReasonCode, VisaRule
from sesame.snapshots import NIGHT_POINTER, schema_version

log = logging.getLogger(__name__)

SCORES, VISA, EXCLUSIONS = "sesame_scores", "visa_eligibility", "score_exclusions"
RULES, CHECKS, CODES = "visa_rules", "visa_rule_checks", "reason_code_dictionary"
IDENTITIES = "identities"
# What the service loads of a night, all of it from the one read of NIGHT.
DATASETS = (SCORES, VISA, EXCLUSIONS, RULES, CHECKS, CODES, IDENTITIES)
# The major version of the published datasets' contracts (contracts/<dataset>/v1.json) this service reads.
SERVED_MAJOR = 1
SCORE_COLUMNS = ("user_id", "score", "tier", *(f"{f}_score" for f in FACTORS), "reason_codes", "model_version")
VISA_COLUMNS = ("destination", "user_id", "score", "rule_version")
EXCLUSION_COLUMNS = ("user_id", "exclusion_code", "description_en")
RULE_COLUMNS = (
    "destination",
    "rule_version",
    "min_score",
    "require_identity_verified",
    "exclude_court_listed",
    "min_history_days",
    "min_qualifying_nights",
    "valid_from",
    "valid_to",
)
CHECK_COLUMNS = (
    "destination",
    "user_id",
    "rule_version",
    "score",
    "history_days",
    "qualifying_nights",
    "eligible",
    "failed_conditions",
)
CODE_COLUMNS = ("reason_code", "factor", "description_en", "description_zh")
IDENTITY_COLUMNS = (
    "user_id",
    "registered_name",
    "id_document_type",
    "id_document_masked",
    "identity_verified",
    "profile_ds",
)


class SnapshotLoadError(RuntimeError):
    pass


@dataclass(frozen=True)
class SnapshotInfo:
    dataset: str
    snapshot: str  # "ds=YYYY-MM-DD/run=<run_id>", relative to the dataset folder
    ds: str
    run_id: str
    rows: int
    created_at: str
    loaded_at: str


def _encoded(column: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Dictionary-encode a string column: (int32 indices, distinct values), so 1M rows cost 4 MB, not 1M objects."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32), encoded.dictionary.to_pylist()


def _position(users: np.ndarray, user_id: str) -> int | None:
    """Where user_id stands in `users`, sorted bytes (a binary search), or None if it is not there."""
    key = user_id.encode("utf-8")
    i = int(np.searchsorted(users, key))
    return i if i < len(users) and users[i] == key else None


class ScoresIndex:
    """sesame_scores by user_id: a dict to the row, and the columns as compact arrays."""

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        ids = table.column("user_id").to_pylist()
        self.row = dict(zip(ids, range(len(ids))))
        if len(self.row) != len(ids):
            raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: user_id is not unique")
        if None in self.row:
            raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: rows without a user_id")
        self.score = table.column("score").to_numpy().astype(np.int32)
        self.sub_scores = {f: table.column(f"{f}_score").to_numpy().astype(np.float64) for f in FACTORS}
        self.tier, self.tiers = _encoded(table.column("tier"))
        self.model, self.models = _encoded(table.column("model_version"))
        codes = table.column("reason_codes").combine_chunks()
        codes = pc.fill_null(codes, pa.scalar([], codes.type))
        self.code_offsets = codes.offsets.to_numpy()
        self.code, self.codes = _encoded(pa.chunked_array([codes.flatten()]))

    def __len__(self) -> int:
        return len(self.row)

    def get(self, user_id: str) -> dict | None:
        i = self.row.get(user_id)
        if i is None:
            return None
        start, end = self.code_offsets[i], self.code_offsets[i + 1]
        return {
            "user_id": user_id,
            "score": int(self.score[i]),
            "tier": self.tiers[self.tier[i]],
            "sub_scores": {f: None if np.isnan(a[i]) else round(float(a[i]), 2) for f, a in self.sub_scores.items()},
            "reason_codes": [self.codes[j] for j in self.code[start:end]],
            "model_version": self.models[self.model[i]],
        }


@dataclass
class DestinationList:
    """One destination's eligible users, sorted by user_id for keyset paging."""

    user_ids: list[str]
    scores: np.ndarray
    rule_version: np.ndarray
    rule_versions: list[str]
    position: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.position = dict(zip(self.user_ids, range(len(self.user_ids))))

    def item(self, i: int) -> dict:
        return {
            "user_id": self.user_ids[i],
            "score": int(self.scores[i]),
            "rule_version": self.rule_versions[self.rule_version[i]],
        }

    def get(self, user_id: str) -> dict | None:
        i = self.position.get(user_id)
        return None if i is None else self.item(i)

    def page(self, after: str | None, limit: int) -> tuple[list[dict], str | None]:
        start = bisect.bisect_right(self.user_ids, after) if after else 0
        end = min(start + limit, len(self.user_ids))
        items = [self.item(i) for i in range(start, end)]
        return items, (self.user_ids[end - 1] if end < len(self.user_ids) and items else None)


class EligibilityIndex:
    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        table = table.sort_by([("destination", "ascending"), ("user_id", "ascending")])
        destinations = table.column("destination").to_pylist()
        self.by_destination: dict[str, DestinationList] = {}
        start = 0
        while start < len(destinations):
            name = destinations[start]
            end = bisect.bisect_right(destinations, name, lo=start)
            part = table.slice(start, end - start)
            versions, names = _encoded(part.column("rule_version"))
            listing = DestinationList(
                part.column("user_id").to_pylist(), part.column("score").to_numpy().astype(np.int32), versions, names
            )
            if len(listing.position) != len(listing.user_ids):
                raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: {name} lists a user twice")
            self.by_destination[name] = listing
            start = end

    def __len__(self) -> int:
        return sum(len(d.user_ids) for d in self.by_destination.values())


class ExclusionsIndex:
    """score_exclusions by user_id: why each user of the night got no score."""

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        self.by_user = {
            u: {"exclusion_code": c, "description_en": d}
            for u, c, d in zip(
                table.column("user_id").to_pylist(),
                table.column("exclusion_code").to_pylist(),
                table.column("description_en").to_pylist(),
            )
        }

    def __len__(self) -> int:
        return len(self.by_user)

    def get(self, user_id: str) -> dict | None:
        return self.by_user.get(user_id)


class RulesIndex:
    """visa_rules: the rule each destination was judged by that night."""

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        self.by_destination = {
            row["destination"]: VisaRule(**{c: row[c] for c in RULE_COLUMNS})
            for row in table.select(list(RULE_COLUMNS)).to_pylist()
        }

    def __len__(self) -> int:
        return len(self.by_destination)


class ReasonCodesIndex:
    """reason_code_dictionary of the night: what each reason code means."""

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        self.by_code = {
            row["reason_code"]: ReasonCode(
                row["reason_code"], row["factor"], row["description_en"], row["description_zh"]
            )
            for row in table.select(list(CODE_COLUMNS)).to_pylist()
        }

    def __len__(self) -> int:
        return len(self.by_code)


class RuleChecksIndex:
    """visa_rule_checks: each scored user's decision per destination, held as compact arrays over the sorted
    user ids (the failed conditions as bits, two bytes per user and destination), not as millions of objects."""

    NOT_CHECKED = np.iinfo(np.uint16).max

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        self.rows = table.num_rows
        ids = table.column("user_id").combine_chunks().cast(pa.binary()).to_numpy(zero_copy_only=False)
        self.users, position = np.unique(ids.astype(np.bytes_), return_inverse=True)
        failed = table.column("failed_conditions").combine_chunks()
        named = pc.list_flatten(failed).to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(failed).to_numpy()
        # the contract's conditions first, in the rule's order; any a later minor version adds after them
        self.conditions = [*VISA_CONDITIONS, *sorted(set(named) - set(VISA_CONDITIONS))]
        if len(self.conditions) > 15:
            raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: {len(self.conditions)} conditions; at most 15")
        bits = np.zeros(table.num_rows, np.uint16)
        for bit, condition in enumerate(self.conditions):
            np.bitwise_or.at(bits, parents[named == condition], np.uint16(1 << bit))
        destination, destinations = _encoded(table.column("destination"))
        versions, self.rule_versions = _encoded(table.column("rule_version"))
        history = pc.fill_null(table.column("history_days"), -1).to_numpy().astype(np.int32)
        qualifying = table.column("qualifying_nights").to_numpy().astype(np.int32)
        score = table.column("score").to_numpy().astype(np.int32)
        self.by_destination: dict[str, dict[str, np.ndarray]] = {}
        for d, name in enumerate(destinations):
            rows = np.flatnonzero(destination == d)
            at = position[rows]
            if len(np.unique(at)) != len(at):
                raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: {name} checks a user twice")
            arrays = {
                "failed": np.full(len(self.users), self.NOT_CHECKED, np.uint16),
                "rule_version": np.zeros(len(self.users), np.int32),
                "score": np.zeros(len(self.users), np.int32),
                "history_days": np.full(len(self.users), -1, np.int32),
                "qualifying_nights": np.zeros(len(self.users), np.int32),
            }
            for key, values in (
                ("failed", bits),
                ("rule_version", versions),
                ("score", score),
                ("history_days", history),
                ("qualifying_nights", qualifying),
            ):
                arrays[key][at] = values[rows]
            self.by_destination[name] = arrays

    def __len__(self) -> int:
        return self.rows

    def get(self, destination: str, user_id: str) -> dict | None:
        """The night's decision for the user and destination: the failed conditions (empty when eligible) and the
        values the rule looked at; None when the night did not check them."""
        arrays = self.by_destination.get(destination)
        if arrays is None:
            return None
        i = _position(self.users, user_id)
        if i is None or arrays["failed"][i] == self.NOT_CHECKED:
            return None
        bits = int(arrays["failed"][i])
        history = int(arrays["history_days"][i])
        return {
            "failed_conditions": [c for bit, c in enumerate(self.conditions) if bits >> bit & 1],
            "rule_version": self.rule_versions[arrays["rule_version"][i]],
            "score": int(arrays["score"][i]),
            "history_days": None if history < 0 else history,
            "qualifying_nights": int(arrays["qualifying_nights"][i]),
        }


class IdentitiesIndex:
    """identities: who each scored user is (registered name, masked document), for credit reports only; kept as
    the Arrow table sorted by user_id and looked up by binary search, not as a million Python objects."""

    def __init__(self, table: pa.Table, info: SnapshotInfo):
        self.info = info
        self.table = table.select(list(IDENTITY_COLUMNS)).sort_by("user_id").combine_chunks()
        ids = self.table.column("user_id").cast(pa.binary()).to_numpy(zero_copy_only=False).astype(np.bytes_)
        if len(ids) and (ids[1:] == ids[:-1]).any():
            raise SnapshotLoadError(f"{info.dataset} {info.snapshot}: user_id is not unique")
        self.users = ids

    def __len__(self) -> int:
        return self.table.num_rows

    def get(self, user_id: str) -> dict | None:
        i = _position(self.users, user_id)
        if i is None:
            return None
        row = self.table.slice(i, 1).to_pylist()[0]
        row["profile_ds"] = row["profile_ds"].isoformat()
        return row


@dataclass(frozen=True)
class Served:
    """What requests read: replaced whole, never mutated. Nights published before a dataset existed have none of
    it (None)."""

    scores: ScoresIndex | None = None
    visa: EligibilityIndex | None = None
    exclusions: ExclusionsIndex | None = None
    rules: RulesIndex | None = None
    checks: RuleChecksIndex | None = None
    codes: ReasonCodesIndex | None = None
    identities: IdentitiesIndex | None = None

    def indexes(self) -> dict:
        return {d: getattr(self, f) for d, f in FIELDS.items() if getattr(self, f) is not None}

    def visa_rules(self) -> dict[str, VisaRule]:
        """The rules the night judged by, by destination (none for a night published without visa_rules)."""
        return self.rules.by_destination if self.rules is not None else {}

    def explain_codes(self, codes: list[str]) -> list[dict]:
        """Reason codes with their factor and descriptions from the night's reason_code_dictionary (a code it
        does not define is shown as itself)."""
        known = self.codes.by_code if self.codes is not None else {}
        return [
            {
                "code": c,
                "factor": known[c].factor,
                "description_en": known[c].description_en,
                "description_zh": known[c].description_zh,
            }
            if c in known
            else {"code": c, "factor": None, "description_en": c, "description_zh": c}
            for c in codes
        ]


FIELDS = {
    SCORES: "scores",
    VISA: "visa",
    EXCLUSIONS: "exclusions",
    RULES: "rules",
    CHECKS: "checks",
    CODES: "codes",
    IDENTITIES: "identities",
}


def read_verified(folder: Path, dataset: str, required: tuple[str, ...]) -> tuple[pa.Table, dict]:
    """Read a snapshot whole, checking each file's bytes against the manifest before parsing them."""
    manifest_path = folder / "_manifest.json"
    if not manifest_path.exists():
        raise SnapshotLoadError(f"{folder}: no _manifest.json (snapshot missing or incomplete)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("dataset") != dataset:
        raise SnapshotLoadError(f"{folder}: manifest is for {manifest.get('dataset')!r}, expected {dataset!r}")
    if not all(c.get("passed") for c in manifest.get("checks", [])):
        raise SnapshotLoadError(f"{folder}: manifest records failed checks; not serving it")
    version = schema_version(manifest)
    if major_of(version) != SERVED_MAJOR:
        raise SnapshotLoadError(
            f"{folder}: schema version {version}; this service reads major version "
            f"{SERVED_MAJOR} (contracts/{dataset}/v{SERVED_MAJOR}.json)"
        )
    parts = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SnapshotLoadError(f"{path}: listed in the manifest but missing") from None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise SnapshotLoadError(f"{path}: sha256 differs from the manifest")
        part = pq.read_table(pa.BufferReader(data))
        if part.num_rows != entry["rows"]:
            raise SnapshotLoadError(f"{path}: {part.num_rows} rows, manifest says {entry['rows']}")
        parts.append(part)
    if not parts:
        raise SnapshotLoadError(f"{folder}: manifest lists no files")
    table = pa.concat_tables(parts)
    if table.num_rows != manifest["row_count"]:
        raise SnapshotLoadError(f"{folder}: {table.num_rows} rows, manifest says {manifest['row_count']}")
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise SnapshotLoadError(f"{folder}: columns missing: {missing}")
    return table, manifest


def load(root: Path, dataset: str, snapshot: str):
    """Load and index one snapshot; raises SnapshotLoadError when it must not be served."""
    folder = root / dataset / snapshot
    columns, index = {
        SCORES: (SCORE_COLUMNS, ScoresIndex),
        VISA: (VISA_COLUMNS, EligibilityIndex),
        EXCLUSIONS: (EXCLUSION_COLUMNS, ExclusionsIndex),
        RULES: (RULE_COLUMNS, RulesIndex),
        CHECKS: (CHECK_COLUMNS, RuleChecksIndex),
        CODES: (CODE_COLUMNS, ReasonCodesIndex),
        IDENTITIES: (IDENTITY_COLUMNS, IdentitiesIndex),
    }[dataset]
    table, manifest = read_verified(folder, dataset, columns)
    info = SnapshotInfo(
        dataset,
        snapshot,
        str(manifest["ds"]),
        str(manifest["run_id"]),
        table.num_rows,
        str(manifest.get("created_at", "")),
        dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return index(table, info)


class SnapshotStore:
    """Holds the served snapshots and replaces them when NIGHT moves (refresh(), or a watcher thread)."""

    def __init__(
        self, root: Path, reload_seconds: float = 2.0, retry_failed_seconds: float = 30.0, freeze_gc: bool = False
    ):
        self.root = root
        self.freeze_gc = freeze_gc
        self.reload_seconds = reload_seconds
        self.retry_failed_seconds = retry_failed_seconds
        self.current = Served()
        self.errors: dict[str, dict] = {}  # dataset -> the last snapshot that failed to load, and why
        self._seen: tuple | None = None  # stat of the pointer when last examined
        self._failed_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pointers(self) -> tuple[tuple | None, dict[str, str] | None]:
        """(stamp of the pointer, {dataset: snapshot} as one read of NIGHT names them); the names are None when the
        pointer is unchanged since the last look. A home published before NIGHT existed has only per-dataset LATEST
        files."""
        night = self.root / NIGHT_POINTER
        paths = [night] if night.exists() else [self.root / d / "LATEST" for d in (SCORES, VISA)]
        stamps = []
        for path in paths:
            try:
                st = path.stat()
                stamps.append((path.name, st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                stamps.append(None)
        if not any(stamps):
            return None, None
        stamp = tuple(stamps)
        if stamp == self._seen:
            return stamp, None
        try:
            if paths == [night]:
                datasets = json.loads(night.read_text(encoding="utf-8"))["datasets"]
                return stamp, {d: datasets[d]["snapshot"] for d in DATASETS if d in datasets}
            return stamp, {
                d: json.loads(p.read_text(encoding="utf-8"))["snapshot"]
                for d, p in zip((SCORES, VISA), paths)
                if p.exists()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SnapshotLoadError(f"{paths[0]}: unreadable ({exc})") from None

    def refresh(self) -> bool:
        """Load the night the pointer names now, if new; returns True when the served snapshots changed. The
        datasets are swapped in together or not at all: if one fails to load, the previous night stays whole."""
        with self._lock:
            served = self.current
            try:
                stamp, names = self._pointers()
            except SnapshotLoadError as exc:
                self._failed({"night": {"snapshot": None, "error": str(exc)}})
                return False
            if stamp is None:
                return False  # nothing published yet
            if names is None:  # unchanged: only retry a failed load, now and then
                if not self.errors or time.monotonic() - self._failed_at < self.retry_failed_seconds:
                    return False
                self._seen = None
                stamp, names = self._pointers()
            self._seen = stamp
            before = served.indexes()
            fresh, errors = {}, {}
            for dataset, snapshot in names.items():
                if dataset in before and before[dataset].info.snapshot == snapshot:
                    fresh[dataset] = before[dataset]
                    continue
                try:
                    started = time.monotonic()
                    fresh[dataset] = load(self.root, dataset, snapshot)
                    log.info(
                        "loaded %s %s (%d rows in %.1fs)",
                        dataset,
                        snapshot,
                        len(fresh[dataset]),
                        time.monotonic() - started,
                    )
                except Exception as exc:  # noqa: BLE001 - any failure means: keep serving the previous night
                    log.error("not serving %s %s: %s", dataset, snapshot, exc)
                    errors[dataset] = {"snapshot": snapshot, "error": str(exc)}
            if errors:
                self._failed(errors)
                return False
            self.errors = {}
            if fresh.keys() == before.keys() and all(fresh[d] is before[d] for d in before):
                return False
            self.current = Served(**{FIELDS[d]: idx for d, idx in fresh.items()})  # the atomic swap
            log.info("serving %s", ", ".join(f"{d} {idx.info.snapshot}" for d, idx in fresh.items()))
            if self.freeze_gc:
                # Millions of long-lived index entries would make every full garbage collection walk them all
                # (a pause of many milliseconds mid-request); they hold no reference cycles, so move them out
                # of the collector's sight. A replaced snapshot is still freed by reference counting.
                gc.collect()
                gc.freeze()
            return True

    def _failed(self, errors: dict[str, dict]) -> None:
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self.errors = {d: {**e, "at": at} for d, e in errors.items()}
        self._failed_at = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad look
                log.exception("snapshot watcher")

    def start(self) -> None:
        self.refresh()
        if self.reload_seconds > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="snapshot-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def status(self) -> dict:
        served = self.current
        return {
            "snapshots": {
                idx.info.dataset: {
                    "snapshot": idx.info.snapshot,
                    "ds": idx.info.ds,
                    "run_id": idx.info.run_id,
                    "rows": idx.info.rows,
                    "loaded_at": idx.info.loaded_at,
                }
                for idx in served.indexes().values()
            },
            "errors": dict(self.errors),
        }


def reload_seconds_from_env() -> float:
    return float(os.environ.get("SESAME_SERVE_RELOAD_SECONDS", "2"))
