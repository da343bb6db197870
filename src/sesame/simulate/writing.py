"""Generation and writing of the deliveries: :func:`generate` steps the world day by day and yields each
source's frame; :func:`simulate` writes them (through the dirt injector when dirt is asked for) and records
the run in `_simulation.json`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from sesame.deliveries import MARKER, write_delivery
from sesame.dirt import DirtInjector
from sesame.progress import Progress
from sesame.schemas import SOURCES
from sesame.simulate import frames
from sesame.simulate.world import BillRows, World

SUCCESS_MARKER = MARKER
SIMULATION_FILE = "_simulation.json"


def _finish(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Order the columns as declared."""
    names = SOURCES[name].column_names
    return df if list(df.columns) == names else df[names]


def generate(
    users: int,
    days: int,
    end_ds: date,
    seed: int = 7,
    progress: bool = False,
    activity: float = 1.0,
    contacts: float = 1.0,
) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """Yield ``(source, ds, frame)`` for every source and day, in day order.

    Frames hold the declared columns in declared order. Text columns are Arrow-backed strings
    (``string[pyarrow]``), dates Arrow dates (``date32[day][pyarrow]``, written as "YYYY-MM-DD"),
    timestamps ISO strings ("YYYY-MM-DDTHH:MM:SS"), numbers numpy integers and floats; nulls are
    missing values. A frame is built when it is asked for and not kept afterwards.

    `activity` multiplies the everyday payments, orders and transfers per user (each payment and transfer
    smaller by as much) and `contacts` the social graph's mean degree; both 1 by default, for sizing runs.
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be positive")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if activity <= 0 or contacts <= 0:
        raise ValueError("activity and contacts must be positive")
    world = World(users, days, end_ds, seed, activity, contacts)
    bar = Progress("simulate", total=world.days, unit="day", quiet=not progress)
    history: list[BillRows] = []
    for d in range(world.warm, world.start):
        world.step_state(d)
        history.append(world.credit_step(d))
    for i, d in enumerate(range(world.start, world.end + 1)):
        first = i == 0
        ds = str(world.iso(d))
        world.step_state(d)
        bill_rows: BillRows | None = world.credit_step(d)
        if first:
            bill_rows = BillRows.concat(history + [bill_rows])
            history = []
        # frames are built one at a time, in this order (some change the world's state), and
        # dropped once handed over, so that only one large frame is alive at a time
        for name in SOURCES:
            if name == "users":
                frame = frames.users_frame(world, d)
            elif name == "orders":
                frame = frames.orders_frame(world, d)
            elif name == "payments":
                frame = frames.payments_frame(world, d)
            elif name == "bills":
                frame, bill_rows = frames.bills_frame(world, bill_rows), None
            elif name == "social_edges":
                frame = frames.edges_frame(world, d, first)
            else:
                frame = frames.blacklist_frame(world, d, first)
            yield name, ds, _finish(name, frame)
            del frame
        bar.update(status=ds)
    bar.close()


def simulate(
    raw_dir: Path,
    users: int,
    days: int,
    end_ds: date,
    seed: int = 7,
    progress: bool = False,
    dirty: dict[str, float | int | str] | str | None = None,
    activity: float = 1.0,
    contacts: float = 1.0,
) -> dict:
    """Write `days` days of upstream deliveries ending at `end_ds` (inclusive) under `raw_dir`.

    Each source gets ``raw_dir/<source>/ds=YYYY-MM-DD/<file>`` plus a ``_SUCCESS`` marker with the
    file's control totals (records, bytes, sha256).
    `dirty` asks for dirt (see :mod:`sesame.dirt`): a profile name such as ``"default"``, a spec
    such as ``"default,late=0.05"``, or ``{kind: rate}``; each delivery then also gets a
    ``_dirt.json`` with what was done and what ingestion should count.
    Returns (and writes to ``raw_dir/_simulation.json``) the parameters and the records delivered:
    ``{"users", "days", "start_ds", "end_ds", "seed", "activity", "contacts", "rows": {source: total},
    "per_day": {source: {ds: rows}}, "dirty": None | {"spec", "values", "faults", "records",
    "expected"}, "control_totals": True}``.
    """
    raw_dir = Path(raw_dir)
    start_ds = end_ds - timedelta(days=days - 1)
    injector = None
    if dirty is not None:
        injector = DirtInjector(dirty, seed, [(start_ds + timedelta(days=i)).isoformat() for i in range(days)])
        if not injector.active:  # e.g. the "none" profile: a clean run
            injector = None
    raw_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, dict[str, int]] = {name: {} for name in SOURCES}
    for name, ds, frame in generate(users, days, end_ds, seed, progress, activity, contacts):
        if injector is None:
            write_delivery(raw_dir, name, ds, frame)
            counts[name][ds] = int(len(frame))
        else:
            delivery = injector.apply(name, ds, frame)
            del frame
            delivery.write(raw_dir)
            counts[name][ds] = delivery.delivered
    summary = {
        "users": int(users),
        "days": int(days),
        "start_ds": start_ds.isoformat(),
        "end_ds": end_ds.isoformat(),
        "seed": int(seed),
        "activity": float(activity),
        "contacts": float(contacts),
        "rows": {name: sum(per_day.values()) for name, per_day in counts.items()},
        "per_day": counts,
        "dirty": injector.summary() if injector is not None else None,
        "control_totals": True,  # markers carry the upstream's control totals (older simulations: empty markers)
    }
    tmp = raw_dir / f".{SIMULATION_FILE}.inprogress"
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, raw_dir / SIMULATION_FILE)
    return summary
