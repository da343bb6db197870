"""Dirt on request: the faults real upstream deliveries have, injected into simulated ones, with
the exact effect each should have on ingestion written beside every delivery.

Record-level kinds (a rate: the share of a delivery's records affected, rounded down, so a small
delivery may get none), each with the effect ingestion should report:

* ``duplicate``: exact copies of records within the delivery -> duplicates;
* ``redelivered``: records of an earlier day delivered again (same natural key, same content)
  -> duplicates;
* ``late``: records held back and delivered 1-3 days after their event day -> accepted, routed
  by their event date;
* ``malformed``: a broken line, half a JSON object or a CSV line with an unquoted comma in a
  value -> quarantined ``malformed_record``;
* ``null_required``: a required field left empty -> ``required_null:<col>``;
* ``negative_amount`` / ``absurd_amount``: a negative amount / one far above the declared
  maximum -> ``below_min:<col>`` / ``above_max:<col>`` (amount, or amount_due for bills);
* ``unknown_category``: a category (orders) or kind (payments) outside the declared list
  -> ``not_allowed:category`` / ``not_allowed:kind``;
* ``mistyped_document``: an identity document number (users) with a wrong check character, as a
  digit typed wrong leaves it -> ``bad_checksum:id_document_number``. In the ``heavy`` profile only.

Whole-delivery kinds (one source on one day each): ``added_column`` (an extra column, tolerated),
``renamed_column`` (a required column renamed: the delivery is rejected), ``truncated_file`` (the
file cut in half in transit, whatever its format: the delivery is rejected) and
``missing_delivery`` (the folder has no ``_SUCCESS`` marker).
Their value is a number of deliveries (on the last days, sources picked by the seed), a
probability per delivery (below 1), or explicit targets ``source`` (the last day) or
``source@YYYY-MM-DD``, several joined with ``+``.

Every ``_SUCCESS`` marker carries the upstream's control totals of its file (records, bytes, sha256;
see :mod:`sesame.deliveries`). Record-level dirt is the upstream's own content, so the totals
describe the file as written, dirt included; a truncated file is damage in transit, so the totals
describe the intact file and ingestion rejects the cut one (``control.bytes``) before reading it.

Kinds apply only where they make sense (no late or re-delivered records in the full ``users``
snapshot, no malformed lines in Parquet, amounts in orders, payments and bills, categories in
orders and payments). The kinds of dirt never overlap on one record, so every count is exact.

Profiles: ``none``; ``default`` (small rates, no whole-delivery faults: every source of a dirty
night stays under a 1% quarantine share); ``heavy`` (ten times more, enough to fail that gate).
:func:`parse_dirty` reads the command-line form, e.g. ``default,late=0.05,renamed_column=orders``.

Beside each delivery, ``_dirt.json`` (skipped by readers, as its name starts with an underscore)
holds what was done and what ingestion should report::

    {"source": "orders", "ds": "2025-03-31", "file": "orders.jsonl", "format": "jsonl",
     "fault": null,
     "kinds": {"duplicate": {"records": 27, "duplicates": 27},
               "late": {"records": 110, "late": 110, "held_back": 0},
               "malformed": {"records": 5, "quarantined": {"malformed_record": 5}}, ...},
     "expected": {"complete": true, "rejected": null, "delivered": 5648, "accepted": 5581,
                  "quarantined": 28, "duplicates": 39,
                  "quarantine_reasons": {"malformed_record": 5, "required_null:user_id": 2, ...},
                  "late": 110, "added_columns": []}}

``expected.duplicates`` counts re-delivered records as duplicates, which holds when the earlier
days were ingested before, or in the same run.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sesame import identity
from sesame.deliveries import write_delivery
from sesame.schemas import SOURCES, Source

DIRT_FILE = "_dirt.json"

RECORD_KINDS = (
    "duplicate",
    "redelivered",
    "late",
    "malformed",
    "null_required",
    "negative_amount",
    "absurd_amount",
    "unknown_category",
    "mistyped_document",
)
DELIVERY_KINDS = ("missing_delivery", "renamed_column", "truncated_file", "added_column")
KINDS = RECORD_KINDS + DELIVERY_KINDS

PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    # small enough that every source of a dirty night stays under a 1% quarantine share
    "default": {
        "duplicate": 0.005,
        "redelivered": 0.002,
        "late": 0.02,
        "malformed": 0.001,
        "null_required": 0.001,
        "negative_amount": 0.001,
        "absurd_amount": 0.001,
        "unknown_category": 0.001,
    },
    # enough dirt that a night fails its quarantine gate
    "heavy": {
        "duplicate": 0.05,
        "redelivered": 0.02,
        "late": 0.1,
        "malformed": 0.01,
        "null_required": 0.01,
        "negative_amount": 0.01,
        "absurd_amount": 0.01,
        "unknown_category": 0.01,
        "mistyped_document": 0.01,
    },
}

AMOUNT_COLUMN = {"orders": "amount", "payments": "amount", "bills": "amount_due"}
CATEGORY_COLUMN = {"orders": "category", "payments": "kind"}
UNKNOWN_VALUES = {
    "orders": ("lottery", "pet_supplies", "crypto_mining"),
    "payments": ("red_packet", "refund", "crypto"),
}
RENAMED = {
    "users": ("registered_date", "signup_date"),
    "orders": ("user_id", "customer_id"),
    "payments": ("user_id", "customer_id"),
    "bills": ("user_id", "customer_id"),
    "social_edges": ("relation", "relationship"),
    "blacklist": ("user_id", "customer_id"),
}
ADDED_COLUMN = "channel"
ADDED_VALUES = ("app", "web", "mini_program")

LATE_MAX_DAYS = 3  # late records arrive 1..3 days after their event day
_POOL_DAYS = 7  # re-delivered records come from the last days' deliveries ...
_POOL_ROWS = 20_000  # ... from a sample of at most this many records of each
_INSERT_GROUPS = 64  # extra records go into a delivery in at most this many places


def applies(kind: str, source: str) -> bool:
    """Whether a kind of dirt makes sense for a source."""
    src = SOURCES[source]
    if kind in ("redelivered", "late"):
        return not src.full_snapshot and src.event_col is not None
    if kind == "malformed":
        return src.format in ("csv", "jsonl")
    if kind in ("negative_amount", "absurd_amount"):
        return source in AMOUNT_COLUMN
    if kind == "unknown_category":
        return source in CATEGORY_COLUMN
    if kind == "null_required":
        return bool(_nullable_targets(src))
    if kind == "mistyped_document":
        return _checked_document(src) is not None
    return kind in KINDS


def _checked_document(src: Source) -> str | None:
    """The column whose values carry a check character (the identity document), if the source has one."""
    return next((c.name for c in src.columns if c.checksum), None)


def _nullable_targets(src: Source) -> list[str]:
    """Required columns outside the natural key (left empty, they are quarantined as such)."""
    return [c.name for c in src.columns if c.required and c.name not in src.key]


def _rng(seed: int, purpose: str, day: int = 0) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode("utf-8")), int(day)]))
    )


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


def _check_value(kind: str, value) -> float | int | str:
    if kind not in KINDS:
        raise ValueError(f"unknown dirt kind {kind!r}; kinds: {', '.join(KINDS)}; profiles: {', '.join(PROFILES)}")
    if kind in RECORD_KINDS:
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"dirt {kind}: a rate between 0 and 1 is needed, got {value!r}") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"dirt {kind}: a rate between 0 and 1 is needed, got {value!r}")
        return rate
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        number = float(value)
        if number < 0 or (number >= 1 and number != int(number)):
            raise ValueError(
                f"dirt {kind}: a count, a probability below 1 or source[@YYYY-MM-DD] targets are needed, got {value!r}"
            )
        return int(number) if number >= 1 or number == 0 else number
    if isinstance(value, str):
        for target in value.split("+"):
            source = target.split("@", 1)[0]
            if source not in SOURCES:
                raise ValueError(f"dirt {kind}: unknown source {source!r} in {value!r}; sources: {', '.join(SOURCES)}")
        return value
    raise ValueError(f"dirt {kind}: cannot use {value!r}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_dirty(text: str | None) -> dict[str, float | int | str]:
    """Parse ``PROFILE``, ``kind=value`` and bare ``kind`` items separated by commas, later items
    overriding earlier ones: ``"default"``, ``"default,late=0.05"``, ``"duplicate=0.01,malformed=0.002"``,
    ``"renamed_column=orders@2025-03-31"``, ``"missing_delivery"`` (one delivery on the last day).

    Returns ``{kind: value}``: rates (0-1) for record-level kinds; for whole-delivery kinds a count,
    a probability per delivery, or targets (``source[@ds]`` joined by ``+``).
    """
    out: dict[str, float | int | str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            kind, value = (x.strip() for x in item.split("=", 1))
            out[kind] = _check_value(kind, value)
        elif item in PROFILES:
            out.update(PROFILES[item])
        elif item in DELIVERY_KINDS:
            out[item] = 1
        elif item in RECORD_KINDS:
            raise ValueError(f"dirt {item}: a rate is needed, as in {item}=0.01")
        else:
            _check_value(item, None)  # raises: unknown kind
    return out


def resolve(dirty: dict | str | None) -> tuple[str | None, dict[str, float | int | str]]:
    """(the spec as given when it was text, the checked per-kind values)."""
    if dirty is None:
        return None, {}
    if isinstance(dirty, str):
        return dirty, parse_dirty(dirty)
    return None, {kind: _check_value(kind, value) for kind, value in dict(dirty).items()}


# --------------------------------------------------------------------------------------------------
# Injection
# --------------------------------------------------------------------------------------------------

# what became of each record of a delivery (small integer codes: deliveries can be large)
_CLEAN, _LATE, _COPY, _REDELIVERED, _BROKEN, _INVALID = range(6)


@dataclass
class Delivery:
    """One source's delivery for one day as it will be written, with its `_dirt.json` report."""

    source: str
    ds: str
    frame: pd.DataFrame
    report: dict
    broken_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    truncate: bool = False
    complete: bool = True

    @property
    def delivered(self) -> int:
        """Records the upstream delivered, as its control totals count them (and ingestion too, unless it
        rejects the delivery)."""
        return int(len(self.frame))

    def write(self, raw_dir: Path) -> Path:
        src = SOURCES[self.source]
        broken = sorted(int(i) for i in self.broken_rows)
        patch = (lambda path: _patch_text(path, src.format, broken)) if broken else None
        sidecar = json.dumps(self.report, indent=1, sort_keys=True) + "\n"
        return write_delivery(
            raw_dir,
            self.source,
            self.ds,
            self.frame,
            patch=patch,
            damage=_cut_in_half if self.truncate else None,
            sidecars={DIRT_FILE: sidecar},
            complete=self.complete,
        )


def _patch_text(path: Path, fmt: str, broken: list[int]) -> None:
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    header = 1 if fmt == "csv" else 0
    for row in broken:
        lines[row + header] = _break_line(lines[row + header], fmt)
    path.write_bytes(b"\n".join(lines) + b"\n")


def _cut_in_half(path: Path) -> None:
    """Damage in transit: the file loses its second half (mid-line for a text file)."""
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _break_line(line: bytes, fmt: str) -> bytes:
    """A line the reader cannot parse: half a JSON object, or a CSV line with one field too many
    (an unquoted comma inside the user id)."""
    if fmt == "jsonl":
        return line[: max(len(line) // 2, 1)]
    if b'"' in line:
        return line + b",?"
    first = line.index(b",")
    second = line.find(b",", first + 1)
    second = len(line) if second < 0 else second
    cut = first + 1 + max((second - first - 1) // 2, 0)
    return line[:cut] + b"," + line[cut:]


class DirtInjector:
    """Applies the requested dirt to each (source, day) frame, in day order, deterministically by seed.

    Late and re-delivered records move between days, so every delivery of a source must pass through
    :meth:`apply` in day order.
    """

    def __init__(self, dirty: dict | str | None, seed: int, days: list[str]) -> None:
        self.spec, self.values = resolve(dirty)
        self.seed = int(seed)
        self.days = list(days)
        self._day_index = {ds: i for i, ds in enumerate(self.days)}
        self.rates = {k: float(v) for k, v in self.values.items() if k in RECORD_KINDS and float(v) > 0}
        self.faults = self._plan_faults()
        self._pending: dict[str, dict[str, list[pd.DataFrame]]] = {s: {} for s in SOURCES}
        self._pool: dict[str, list[tuple[int, pd.DataFrame]]] = {s: [] for s in SOURCES}
        self.totals: Counter = Counter()
        self.expected: Counter = Counter()

    @property
    def active(self) -> bool:
        return bool(self.rates or self.faults)

    # ---- planning of whole-delivery faults --------------------------------------------------------
    def _plan_faults(self) -> dict[tuple[str, str], str]:
        faults: dict[tuple[str, str], str] = {}
        last = self.days[-1] if self.days else None
        for kind in DELIVERY_KINDS:
            value = self.values.get(kind)
            if not value:
                continue
            if isinstance(value, str):
                chosen = []
                for target in value.split("+"):
                    source, _, ds = target.partition("@")
                    ds = ds or last
                    if ds not in self._day_index:
                        raise ValueError(
                            f"dirt {kind}: {ds!r} is not a simulated day ({self.days[0]}..{self.days[-1]})"
                        )
                    if (source, ds) in faults:
                        raise ValueError(f"dirt {kind}: {source} on {ds} already has {faults[(source, ds)]}")
                    chosen.append((source, ds))
            else:
                rng = _rng(self.seed, f"dirt-faults:{kind}")
                free = [(s, ds) for ds in self.days for s in SOURCES if (s, ds) not in faults]
                if value < 1:
                    chosen = [pair for pair, r in zip(free, rng.random(len(free))) if r < value]
                else:
                    # the last days first (the nights most likely to be run), sources by the seed
                    chosen = []
                    for ds in reversed(self.days):
                        options = [s for s in SOURCES if (s, ds) not in faults]
                        if options and len(chosen) < value:
                            chosen.append((options[int(rng.integers(len(options)))], ds))
            for pair in chosen:
                faults[pair] = kind
        return faults

    def _usable(self, source: str, ds: str) -> bool:
        """Whether a delivery will be read record by record (not rejected, not missing): late records are
        held back only for usable days, and only usable days deliver re-delivered records."""
        return self.faults.get((source, ds)) not in ("missing_delivery", "renamed_column", "truncated_file")

    # ---- one delivery ----------------------------------------------------------------------------
    def apply(self, source: str, ds: str, frame: pd.DataFrame) -> Delivery:
        """The delivery of `source` for `ds`: one random stream per (source, day) draws, in this order, the late
        records held back, the re-delivered ones, the rows of each record-level kind, the values they get, where
        the extra records go and an added column's values."""
        src = SOURCES[source]
        day = self._day_index[ds]
        rng = _rng(self.seed, f"dirt:{source}", day)
        fault = self.faults.get((source, ds))
        report: dict = {"source": source, "ds": ds, "file": src.file, "format": src.format, "fault": fault, "kinds": {}}
        if not self._usable(source, ds):
            return self._unusable(source, ds, frame, fault, report)

        own = frame if frame.index.equals(pd.RangeIndex(len(frame))) else frame.reset_index(drop=True)
        kinds = report["kinds"]
        own, held = self._hold_back_late(source, ds, day, own, rng)
        arrived = self._pending[source].pop(ds, [])
        late_in = pd.concat(arrived, ignore_index=True) if arrived else own.iloc[:0]
        redelivered = self._redelivered(source, day, own, rng)

        # record-level dirt on today's own records: disjoint sets of rows
        picked = self._pick_rows(source, len(own), rng)
        dirt = _OwnRecords(own, kinds)
        if "malformed" in picked:
            _malformed(dirt, picked["malformed"])
        if "null_required" in picked:
            _null_required(dirt, picked["null_required"], src, rng)
        for kind in ("negative_amount", "absurd_amount"):
            if kind in picked:
                _bad_amount(dirt, kind, picked[kind], src, rng)
        if "unknown_category" in picked:
            _unknown_category(dirt, picked["unknown_category"], source, rng)
        if "mistyped_document" in picked:
            _mistyped_document(dirt, picked["mistyped_document"], src, rng)
        own = dirt.result()
        copies = own.iloc[:0]
        if "duplicate" in picked:
            copies = own.iloc[picked["duplicate"]]
            kinds["duplicate"] = {"records": len(copies), "duplicates": len(copies)}
        if "late" in self.rates and applies("late", source):
            kinds["late"] = {"records": len(late_in), "late": len(late_in), "held_back": held}
        if "redelivered" in self.rates and applies("redelivered", source):
            kinds["redelivered"] = {"records": len(redelivered), "duplicates": len(redelivered)}

        final, roles = _assemble(own, dirt.role, copies, late_in, redelivered, rng)
        added: list[str] = []
        if fault == "added_column":
            final, added = _add_column(final, rng), [ADDED_COLUMN]
            kinds["added_column"] = {"records": 0, "added_columns": added}

        duplicates = int(len(copies) + len(redelivered))
        q_total = int(sum(dirt.quarantined.values()))
        report["expected"] = {
            "complete": True,
            "rejected": None,
            "delivered": int(len(final)),
            "accepted": int(len(final)) - q_total - duplicates,
            "quarantined": q_total,
            "duplicates": duplicates,
            "quarantine_reasons": {k: v for k, v in sorted(dirt.quarantined.items()) if v},
            "late": int(len(late_in)),
            "added_columns": added,
        }
        self._remember(source, day, final, roles)
        self._count(report)
        broken = np.flatnonzero(roles == _BROKEN)
        return Delivery(source, ds, final, report, broken_rows=broken)

    def _hold_back_late(
        self, source: str, ds: str, day: int, own: pd.DataFrame, rng: np.random.Generator
    ) -> tuple[pd.DataFrame, int]:
        """Late: some of today's records are held back for one of the next usable deliveries; (today's records
        left, how many were held back)."""
        if "late" not in self.rates or not applies("late", source):
            return own, 0
        src = SOURCES[source]
        later = [
            self.days[j]
            for j in range(day + 1, min(day + 1 + LATE_MAX_DAYS, len(self.days)))
            if self._usable(source, self.days[j])
        ]
        today = np.flatnonzero(_on_day(own, src, ds))  # not the history of a first delivery
        k = int(np.floor(self.rates["late"] * len(today)))
        if not (later and k):
            return own, 0
        rows = np.sort(rng.choice(today, size=k, replace=False))
        target = rng.integers(0, len(later), size=k)
        for j, ds_later in enumerate(later):
            part = own.iloc[rows[target == j]]
            if len(part):
                self._pending[source].setdefault(ds_later, []).append(part)
        return own.drop(index=rows).reset_index(drop=True), k

    def _redelivered(self, source: str, day: int, own: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Re-delivered: records accepted on an earlier day come again."""
        redelivered = own.iloc[:0]
        if "redelivered" in self.rates and applies("redelivered", source):
            pool = [f for d, f in self._pool[source] if d < day]
            pool_frame = pd.concat(pool, ignore_index=True) if pool else own.iloc[:0]
            k = min(int(np.floor(self.rates["redelivered"] * len(own))), len(pool_frame))
            if k:
                redelivered = pool_frame.iloc[np.sort(rng.choice(len(pool_frame), size=k, replace=False))]
        return redelivered

    def _pick_rows(self, source: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The rows of today's `n` own records each record-level kind changes or copies, no row picked twice."""
        order = rng.permutation(n)
        picked: dict[str, np.ndarray] = {}
        start = 0
        kinds = ("malformed", "null_required", "negative_amount", "absurd_amount", "unknown_category")
        for kind in (*kinds, "mistyped_document", "duplicate"):
            if kind in self.rates and applies(kind, source):
                k = min(int(np.floor(self.rates[kind] * n)), len(order) - start)
                picked[kind] = np.sort(order[start : start + k])
                start += k
        return picked

    def _unusable(self, source: str, ds: str, frame: pd.DataFrame, fault: str, report: dict) -> Delivery:
        src = SOURCES[source]
        expected = {
            "complete": True,
            "rejected": None,
            "delivered": int(len(frame)),
            "accepted": None,
            "quarantined": None,
            "duplicates": None,
            "quarantine_reasons": None,
            "late": 0,
            "added_columns": [],
        }
        complete = True
        if fault == "missing_delivery":
            complete = False
            expected["complete"] = False
            report["kinds"]["missing_delivery"] = {"records": 0, "complete": False}
        elif fault == "renamed_column":
            old, new = RENAMED[source]
            frame = frame.rename(columns={old: new})
            expected["rejected"] = "schema.required_columns"
            report["kinds"]["renamed_column"] = {
                "records": 0,
                "rejected": "schema.required_columns",
                "renamed": {old: new},
            }
        elif src.format == "jsonl" and not len(frame):
            # an empty JSON-lines file has nothing to cut: it arrives whole, as any empty delivery
            expected.update(accepted=0, quarantined=0, duplicates=0, quarantine_reasons={})
            report["kinds"]["truncated_file"] = {"records": 0}
        else:  # cut in half in transit: smaller than its control totals say
            expected["rejected"] = "control.bytes"
            report["kinds"]["truncated_file"] = {"records": int(len(frame)), "rejected": "control.bytes"}
        report["expected"] = expected
        self._count(report)
        return Delivery(source, ds, frame, report, complete=complete, truncate=expected["rejected"] == "control.bytes")

    def _remember(self, source: str, day: int, final: pd.DataFrame, roles: np.ndarray) -> None:
        """Keep a sample of the records this delivery will have accepted, for later re-delivery."""
        if "redelivered" not in self.rates or not applies("redelivered", source):
            return
        keep = np.flatnonzero((roles == _CLEAN) | (roles == _LATE))
        if len(keep) > _POOL_ROWS:
            keep = np.sort(_rng(self.seed, f"dirt-pool:{source}", day).choice(keep, _POOL_ROWS, replace=False))
        declared = [c for c in final.columns if c in SOURCES[source].column_names]
        pool = self._pool[source]
        pool.append((day, final.iloc[keep][declared].reset_index(drop=True)))
        del pool[:-_POOL_DAYS]

    def _count(self, report: dict) -> None:
        for kind, info in report["kinds"].items():
            self.totals[kind] += int(info.get("records", 0))
        exp = report["expected"]
        for key in ("quarantined", "duplicates", "late"):
            self.expected[key] += int(exp.get(key) or 0)

    def summary(self) -> dict:
        """What `_simulation.json` records about the dirt of a run."""
        return {
            "spec": self.spec,
            "values": dict(sorted(self.values.items())),
            "faults": [
                {"kind": kind, "source": s, "ds": ds}
                for (s, ds), kind in sorted(self.faults.items(), key=lambda item: (item[0][1], item[0][0]))
            ],
            "records": dict(sorted(self.totals.items())),
            "expected": dict(sorted(self.expected.items())),
        }


class _OwnRecords:
    """Today's own records while record-level dirt is put in: their columns (a changed column is replaced,
    never changed in place), what became of each record, the quarantine reasons ingestion should find and the
    report's kinds."""

    def __init__(self, own: pd.DataFrame, kinds: dict) -> None:
        self.own = own
        self.columns = {c: own[c] for c in own.columns}
        self.role = np.full(len(own), _CLEAN, dtype=np.int8)
        self.quarantined: Counter = Counter()
        self.kinds = kinds

    def result(self) -> pd.DataFrame:
        """The records with their changed columns."""
        if any(self.columns[c] is not self.own[c] for c in self.own.columns):
            return pd.DataFrame(self.columns, copy=False)
        return self.own


def _malformed(dirt: _OwnRecords, rows: np.ndarray) -> None:
    """Lines broken when the file is written (see `_break_line`)."""
    dirt.role[rows] = _BROKEN
    dirt.kinds["malformed"] = {"records": len(rows), "quarantined": {"malformed_record": len(rows)}}
    dirt.quarantined["malformed_record"] += len(rows)


def _null_required(dirt: _OwnRecords, rows: np.ndarray, src: Source, rng: np.random.Generator) -> None:
    """A required field (outside the natural key) left empty."""
    targets = [c for c in _nullable_targets(src) if c in dirt.own.columns]
    which = rng.integers(0, len(targets), size=len(rows))
    reasons: Counter = Counter()
    for j, col in enumerate(targets):
        sel = rows[which == j]
        if len(sel):
            dirt.columns[col] = _replace(dirt.columns[col], sel, None)
            reasons[f"required_null:{col}"] += len(sel)
    dirt.role[rows] = _INVALID
    dirt.kinds["null_required"] = {"records": len(rows), "quarantined": dict(sorted(reasons.items()))}
    dirt.quarantined.update(reasons)


def _bad_amount(dirt: _OwnRecords, kind: str, rows: np.ndarray, src: Source, rng: np.random.Generator) -> None:
    """A negative amount (``negative_amount``) or one far above the declared maximum (``absurd_amount``)."""
    col = AMOUNT_COLUMN[src.name]
    rule = "below_min" if kind == "negative_amount" else "above_max"
    values = dirt.columns[col].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    if kind == "negative_amount":
        new = -np.maximum(np.abs(values), 0.01)
    else:
        top = float(src.column(col).max or 1e6)
        new = np.round(top * (10.0 + 90.0 * rng.random(len(rows))), 2)
    dirt.columns[col] = _replace(dirt.columns[col], rows, new)
    dirt.role[rows] = _INVALID
    dirt.kinds[kind] = {"records": len(rows), "quarantined": {f"{rule}:{col}": len(rows)}}
    dirt.quarantined[f"{rule}:{col}"] += len(rows)


def _unknown_category(dirt: _OwnRecords, rows: np.ndarray, source: str, rng: np.random.Generator) -> None:
    """A category (orders) or kind (payments) outside the declared list."""
    col, unknown = CATEGORY_COLUMN[source], UNKNOWN_VALUES[source]
    values = np.array(unknown, dtype=object)[rng.integers(0, len(unknown), size=len(rows))]
    dirt.columns[col] = _replace(dirt.columns[col], rows, values)
    dirt.role[rows] = _INVALID
    dirt.kinds["unknown_category"] = {"records": len(rows), "quarantined": {f"not_allowed:{col}": len(rows)}}
    dirt.quarantined[f"not_allowed:{col}"] += len(rows)


def _mistyped_document(dirt: _OwnRecords, rows: np.ndarray, src: Source, rng: np.random.Generator) -> None:
    """The check character of an identity document number replaced by another one (a record without a number
    keeps none and is not counted)."""
    col = _checked_document(src)
    values = dirt.columns[col].iloc[rows].to_numpy(dtype=object, na_value=None)
    rows = rows[[v is not None for v in values]]
    values = [v for v in values if v is not None]
    shift = rng.integers(1, len(identity.CHECK_CHARACTERS), size=len(rows))
    chars = identity.CHECK_CHARACTERS
    wrong = [v[:-1] + chars[(chars.index(v[-1]) + s) % len(chars)] for v, s in zip(values, shift)]
    dirt.columns[col] = _replace(dirt.columns[col], rows, wrong)
    dirt.role[rows] = _INVALID
    dirt.kinds["mistyped_document"] = {"records": len(rows), "quarantined": {f"bad_checksum:{col}": len(rows)}}
    dirt.quarantined[f"bad_checksum:{col}"] += len(rows)


def _assemble(
    own: pd.DataFrame,
    role: np.ndarray,
    copies: pd.DataFrame,
    late_in: pd.DataFrame,
    redelivered: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Today's own records with the extra ones (copies, late arrivals, re-deliveries; shuffled) in groups at
    random places among them, and what became of each record; slices, so large columns are not copied."""
    parts = [x for x in (copies, late_in, redelivered) if len(x)]
    if not parts:
        return own, role
    extra_roles = np.concatenate(
        [
            np.full(len(copies), _COPY, dtype=np.int8),
            np.full(len(late_in), _LATE, dtype=np.int8),
            np.full(len(redelivered), _REDELIVERED, dtype=np.int8),
        ]
    )
    shuffle = rng.permutation(len(extra_roles))
    extras = pd.concat(parts, ignore_index=True).iloc[shuffle]
    extra_roles = extra_roles[shuffle]
    groups = np.array_split(np.arange(len(extras)), min(len(extras), _INSERT_GROUPS))
    places = np.sort(rng.integers(0, len(own) + 1, size=len(groups)))
    pieces, role_pieces, prev = [], [], 0
    for place, group in zip(places, groups):
        pieces += [own.iloc[prev:place], extras.iloc[group]]
        role_pieces += [role[prev:place], extra_roles[group]]
        prev = place
    return (pd.concat(pieces + [own.iloc[prev:]], ignore_index=True), np.concatenate(role_pieces + [role[prev:]]))


def _add_column(final: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The delivery with an extra, undeclared column (tolerated by ingestion)."""
    return final.assign(
        **{
            ADDED_COLUMN: pd.array(
                np.array(ADDED_VALUES, dtype=object)[rng.integers(0, len(ADDED_VALUES), size=len(final))],
                dtype=pd.ArrowDtype(pa.string()),
            )
        }
    )


def _on_day(frame: pd.DataFrame, src: Source, ds: str) -> np.ndarray:
    """Whether each record's event happened on day `ds`."""
    values = frame[src.event_col]
    if isinstance(values.dtype, pd.ArrowDtype):
        arr = pa.chunked_array(values.array.__arrow_array__())
        if pa.types.is_date32(arr.type):
            hit = pc.equal(arr, pa.scalar(date.fromisoformat(ds), type=pa.date32()))
        else:
            hit = pc.starts_with(arr.cast(pa.string()), ds)
        return hit.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    return (values.astype(str).str[:10] == ds).to_numpy()


def _replace(series: pd.Series, rows: np.ndarray, values) -> pd.Series:
    """A copy of a column with new values on some rows (sorted positions); None empties them. Arrow
    columns are changed in Arrow (no Python object per value); integer columns stay integers."""
    if isinstance(series.dtype, pd.ArrowDtype):
        arr = pa.chunked_array(series.array.__arrow_array__()).combine_chunks()
        mask = np.zeros(len(arr), dtype=bool)
        mask[rows] = True
        new = pa.nulls(len(rows), arr.type) if values is None else pa.array(values, type=arr.type)
        return pd.Series(
            pd.arrays.ArrowExtensionArray(pc.replace_with_mask(arr, pa.array(mask), new)),
            index=series.index,
            name=series.name,
        )
    out = series.astype("Int64") if values is None and series.dtype.kind in "iu" else series.copy()
    out.iloc[rows] = None if values is None else values
    return out
