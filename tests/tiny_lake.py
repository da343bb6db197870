"""A tiny hand-made lake for the dbt project, written with pyarrow so that expected results are known by hand.

Three nights; write_night(home, n) leaves in $SESAME_HOME/lake what the night's jobs would before dbt runs:

    user  night 1 / 2 / 3   verified  history  notes
    A     750 / 750 / 740   yes       400
    B     749 / 749 / 755   yes       400
    C     800 / 800 / 800   yes       400      court-listed from night 2
    D     780 / 780 / 780   no        400
    E     760 / 760 / 760   yes       100
    F     820 / 820 / 820   yes       400      court-listed from night 3
    G     735 / 735 / 735   yes       400
    I      -  /  -  / 705   yes        95      no KYC profile on nights 1-2 (excluded NO_PROFILE)
    H      -  /  -  /  -    yes         5      excluded THIN_FILE every night
    J     700 / 700 / 700   yes        90
    K     699 / 699 / 699   yes       400
    L     650 / 650 / 650   no         40
    M     740 / 725 / 740   yes       400
    plus fillers scored below 650 (never eligible).

D and L have no credit file: the no-file scorecard scores them, and it has no credit-history characteristic, so
their credit-history sub-score is null.

The court list has no partition at all on night 1 (a zone that does not exist yet must not fail the
build), C is delivered on night 2 and F on night 3.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sesame import identity
from sesame.features import FEATURES as REGISTRY

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt"
# The tiny lake's user-key secret (a fixed one: the expected user keys are computed from it)
SECRET = "3c9a1f0e7b52d84c6e1a9f3b0d7c25e8a4f6b1d9c3e70a52"
NIGHTS = ["2026-03-01", "2026-03-02", "2026-03-03"]

FEATURES = [f.name for f in REGISTRY]
REASON_CODES = [f.reason_code for f in REGISTRY]

# user: (scores per night, None = not scored that night), identity_verified, history_days
USERS: dict[str, tuple[list[int | None], int, int]] = {
    "A": ([750, 750, 740], 1, 400),
    "B": ([749, 749, 755], 1, 400),
    "C": ([800, 800, 800], 1, 400),
    "D": ([780, 780, 780], 0, 400),
    "E": ([760, 760, 760], 1, 100),
    "F": ([820, 820, 820], 1, 400),
    "G": ([735, 735, 735], 1, 400),
    "I": ([None, None, 705], 1, 95),
    "H": ([None, None, None], 1, 5),
    "J": ([700, 700, 700], 1, 90),
    "K": ([699, 699, 699], 1, 400),
    "L": ([650, 650, 650], 0, 40),
    "M": ([740, 725, 740], 1, 400),
}
FILLER_SCORES = [350, 420, 500, 549, 550, 575, 599, 600, 620, 649, 380, 455, 530, 560, 610, 640, 590, 505, 612, 633]
for _i, _s in enumerate(FILLER_SCORES):
    USERS[f"Z{_i:02d}"] = ([_s, _s + (_i % 3), max(350, _s - (_i % 2))], _i % 2, 200 + _i)

COURT_LIST = {NIGHTS[1]: ["C"], NIGHTS[2]: ["F"]}  # nothing delivered yet on night 1


# Profiles differ from user to user, so that what the warehouse must not hold (an exact city, occupation or
# registration day) can be looked for, and bands and groups have more than one value.
CITIES = ["Hangzhou", "Ningbo", "Wenzhou", "Lishui", "Quzhou"]
OCCUPATIONS = ["engineer", "driver", "teacher", "freelancer", "manager", None]


def registered_date(user: str) -> date:
    """Registration days spread over eight years before the first night, never on the first of a month."""
    i = list(USERS).index(user)
    return date(2018 + i % 8, 1 + (i * 5) % 12, 2 + (i * 7) % 26)


NO_FILE = ("D", "L")
NO_FILE_SEGMENT = "no_credit_file"


def masked_document(user: str) -> str:
    """The identity document as ingestion keeps it: masked to its last four characters."""
    first17 = f"33010219850302{list(USERS).index(user):03d}"
    return identity.mask(first17 + identity.check_character(first17))


def raw_id(user: str) -> str:
    return f"CUST-{user}-{sum(map(ord, user)):04d}"


def user_key(user: str) -> str:
    """The pseudonymous key, computed independently of the dbt macro."""
    return hashlib.sha256(f"{SECRET}|{raw_id(user)}".encode()).hexdigest()[:32]


KEY_TO_USER = {user_key(u): u for u in USERS}


# --------------------------------------------------------------------------------------------- lake
def _write(lake: Path, zone: str, ds: str, table: pa.Table) -> None:
    folder = lake / zone / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet")


def write_night(home: Path, n: int) -> None:
    """Write what the night's jobs leave in the lake before dbt runs for NIGHTS[n]."""
    lake = home / "lake"
    ds = NIGHTS[n]
    scored = [(u, s[n]) for u, (s, _, _) in USERS.items() if s[n] is not None]
    has_profile = [u for u in USERS if not (u == "I" and n < 2)]

    _write(
        lake,
        "scores",
        ds,
        pa.table(
            {
                "user_id": pa.array([raw_id(u) for u, _ in scored], pa.string()),
                "segment": pa.array(
                    [NO_FILE_SEGMENT if u in NO_FILE else "credit_file" for u, _ in scored], pa.string()
                ),
                "score": pa.array([s for _, s in scored], pa.int32()),
                **{
                    f"{f}_score": pa.array(
                        [
                            None if f == "credit_history" and u in NO_FILE else round(10 + (s - 350) / 7.5, 2)
                            for u, s in scored
                        ],
                        pa.float64(),
                    )
                    for f in (
                        "credit_history",
                        "behavior_preference",
                        "fulfillment_capacity",
                        "identity_traits",
                        "social_connections",
                    )
                },
                **{
                    f"{f}_points": pa.array([(s - 350) // 5 for _, s in scored], pa.int32())
                    for f in (
                        "credit_history",
                        "behavior_preference",
                        "fulfillment_capacity",
                        "identity_traits",
                        "social_connections",
                    )
                },
                "reason_codes": pa.array(
                    [REASON_CODES[i % 7 : i % 7 + (i % 5)] for i, _ in enumerate(scored)], pa.list_(pa.string())
                ),
                "model_version": pa.array(["scorecard-2026.03"] * len(scored), pa.string()),
            }
        ),
    )

    excluded = [(u, "THIN_FILE") for u in USERS if u == "H"] + [(u, "NO_PROFILE") for u in USERS if u == "I" and n < 2]
    _write(
        lake,
        "exclusions",
        ds,
        pa.table(
            {
                "user_id": pa.array([raw_id(u) for u, _ in excluded], pa.string()),
                "exclusion_code": pa.array([c for _, c in excluded], pa.string()),
            }
        ),
    )

    _write(
        lake,
        "validated/users",
        ds,
        pa.table(
            {
                "user_id": pa.array([raw_id(u) for u in has_profile], pa.string()),
                "full_name": pa.array([f"Name of {u}" for u in has_profile], pa.string()),
                "gender": pa.array(["F" if i % 2 else "M" for i, _ in enumerate(has_profile)], pa.string()),
                "birth_year": pa.array([1960 + i for i, _ in enumerate(has_profile)], pa.int32()),
                "city": pa.array([CITIES[i % len(CITIES)] for i, _ in enumerate(has_profile)], pa.string()),
                "city_tier": pa.array([1 + i % 4 for i, _ in enumerate(has_profile)], pa.int32()),
                "registered_date": pa.array([registered_date(u) for u in has_profile], pa.date32()),
                "identity_verified": pa.array([USERS[u][1] for u in has_profile], pa.int32()),
                "phone_tenure_months": pa.array([3 + 7 * i for i, _ in enumerate(has_profile)], pa.int32()),
                "address_months": pa.array([24] * len(has_profile), pa.int32()),
                "occupation": pa.array(
                    [OCCUPATIONS[i % len(OCCUPATIONS)] for i, _ in enumerate(has_profile)], pa.string()
                ),
                "id_document_number": pa.array([masked_document(u) for u in has_profile], pa.string()),
                "event_date": pa.array([date.fromisoformat(ds)] * len(has_profile), pa.date32()),
            }
        ),
    )

    if ds in COURT_LIST:
        listed = COURT_LIST[ds]
        _write(
            lake,
            "validated/blacklist",
            ds,
            pa.table(
                {
                    "case_id": pa.array([f"CASE-{ds}-{u}" for u in listed], pa.string()),
                    "user_id": pa.array([raw_id(u) for u in listed], pa.string()),
                    "court": pa.array(["Hangzhou Intermediate People's Court"] * len(listed), pa.string()),
                    "listed_date": pa.array([date.fromisoformat(ds)] * len(listed), pa.date32()),
                    "reason": pa.array(["judgement not performed"] * len(listed), pa.string()),
                }
            ),
        )

    _write(
        lake,
        "features/user_features",
        ds,
        pa.table(
            {
                "user_id": pa.array([raw_id(u) for u in USERS], pa.string()),
                "history_days": pa.array([h for _, _, h in USERS.values()], pa.int32()),
                **{
                    f: pa.array([float(i + k) / 10 for i in range(len(USERS))], pa.float64())
                    for k, f in enumerate(FEATURES)
                },
            }
        ),
    )

    _write(lake, "accounting", ds, accounting(n, ingested_on=ds))
    if n == 2:
        # Night 3 also caught up night 1's payments, which an operator holds: it re-ingested night 1 with them held
        late = accounting(0, ingested_on=ds)
        _write(
            lake,
            "accounting",
            NIGHTS[0],
            pa.concat_tables(
                [
                    late,
                    pa.table(
                        {
                            "source": ["payments"],
                            "delivered": pa.array([30], pa.int64()),
                            "accepted": pa.array([0], pa.int64()),
                            "quarantined": pa.array([0], pa.int64()),
                            "duplicates": pa.array([0], pa.int64()),
                            "file": ["payments.csv"],
                            "held": pa.array([30], pa.int64()),
                            "hold_reason": [HOLD_REASON],
                            "ingested_on": [ds],
                        }
                    ),
                ]
            ),
        )


HOLD_REASON = "held by ops at 2026-03-03T08:00:00+00:00: rule control.bytes; upstream re-delivers"


def accounting(n: int, ingested_on: str) -> pa.Table:
    """The night's row accounting, as ingestion writes it (nothing held)."""
    return pa.table(
        {
            "source": pa.array(["users", "orders", "orders", "blacklist"], pa.string()),
            "delivered": pa.array([40, 100 + n, 50, 1], pa.int64()),
            "accepted": pa.array([40, 97 + n, 49, 1], pa.int64()),
            "quarantined": pa.array([0, 2, 0, 0], pa.int64()),
            "duplicates": pa.array([0, 1, 1, 0], pa.int64()),
            "file": pa.array(["users.csv", "orders.jsonl", "orders-late.jsonl", "blacklist.csv"], pa.string()),
            "held": pa.array([0] * 4, pa.int64()),
            "hold_reason": pa.array([""] * 4, pa.string()),
            "ingested_on": pa.array([ingested_on] * 4, pa.string()),
        }
    )


def dbt_executable() -> str:
    here = Path(sys.executable).parent / "dbt"
    return str(here) if here.exists() else (shutil.which("dbt") or "dbt")


# ----------------------------------------------------------------------------------- nights in one go
def empty_night(home: Path, zone: str, n: int) -> None:
    """Replace what write_night left in one zone for NIGHTS[n] by a delivery with no rows."""
    path = home / "lake" / zone / f"ds={NIGHTS[n]}" / "part-00000.parquet"
    pq.write_table(pq.read_table(path).slice(0, 0), path)


def run_plan(plan: list[dict]) -> None:
    """Run the steps of `plan` in order in this process: {"write_night": n} writes night n into
    $SESAME_HOME/lake, {"empty_night": [zone, n]} empties that zone's delivery of night n, {"dbt": [...]} runs
    one dbt command. One process means one SparkSession for every dbt command on the spark target (starting
    Spark and its metastore is most of what a tiny build costs).
    Prints a line "STEP {json}" after each dbt command; raises SystemExit(1) on the first failure."""
    from dbt.cli.main import dbtRunner

    home = Path(os.environ["SESAME_HOME"])
    for step in plan:
        if "write_night" in step:
            write_night(home, step["write_night"])
            continue
        if "empty_night" in step:
            empty_night(home, *step["empty_night"])
            continue
        started = time.monotonic()
        result = dbtRunner().invoke(step["dbt"])
        print(
            "STEP "
            + json.dumps(
                {"dbt": step["dbt"][:1], "ok": result.success, "seconds": round(time.monotonic() - started, 1)}
            ),
            flush=True,
        )
        if not result.success:
            failed = [
                f"{r.node.unique_id}: {r.message}"
                for r in getattr(result.result, "results", [])
                if str(r.status) in ("error", "fail")
            ]
            print("dbt failed:", step["dbt"], *(failed or [repr(result.exception)]), sep="\n", flush=True)
            raise SystemExit(1)


def start_plan(plan: list[dict], env: dict, log: Path) -> subprocess.Popen:
    """run_plan in a child process (its JVM, if any, ends with it), output to `log`."""
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.tiny_lake", json.dumps(plan)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def finish_plan(proc: subprocess.Popen, log: Path, timeout: float) -> list[dict]:
    """Wait for a start_plan child; its STEP lines, or an error showing the end of its log."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    lines = log.read_text(errors="replace").splitlines()
    if proc.returncode != 0:
        raise AssertionError(f"dbt plan failed (exit {proc.returncode}), end of {log}:\n" + "\n".join(lines[-60:]))
    return [json.loads(line[len("STEP ") :]) for line in lines if line.startswith("STEP ")]


if __name__ == "__main__":
    run_plan(json.loads(sys.argv[1]))
