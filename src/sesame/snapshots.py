"""Published snapshots for downstream services: write (immutable folder + manifest), publish a whole night in one
atomic step, and read (verify the manifest's checksums, return an Arrow dataset).

    published/NIGHT                                    {"ds", "run_id", "datasets": {<dataset>: {"snapshot", ...}},
                                                        "nights": {<ds>: ... every night published}}
    published/<dataset>/LATEST                         {"snapshot": "ds=YYYY-MM-DD/run=<run_id>", ...}
    published/<dataset>/ds=YYYY-MM-DD/run=<run_id>/    part-*.parquet + _manifest.json

A snapshot is assembled in a hidden staging folder and renamed into place whole. A night is published when NIGHT,
replaced by rename, names it: that one step makes every dataset of the night current together, so a reader that
reads NIGHT once (open_night, the score service) never combines datasets of two nights, and a night killed half way
leaves NIGHT and everything it names untouched. Each dataset's LATEST follows NIGHT, for readers of one dataset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sesame import contracts
from sesame.config import ds_partition, ds_partitions, settings
from sesame.durable import replace, write_atomic

ROWS_PER_FILE = 500_000

# Publish also leaves this file in the night's lake scores (lake/scores/ds=...), so that later nights know
# which scores went out (the social feature of neighbours' last published scores); Spark skips "_" files.
PUBLISHED_MARKER = "_PUBLISHED"

# published/NIGHT names the current night's snapshot of every dataset and records every night published.
NIGHT_POINTER = "NIGHT"


class SnapshotError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def snapshot_name(ds: str, run_id: str) -> str:
    """A snapshot's folder relative to its dataset's folder, as LATEST and NIGHT name it: ds=YYYY-MM-DD/run=<run_id>."""
    return f"ds={ds}/run={run_id}"


def snapshot_folder(root: Path, dataset: str, ds: str, run_id: str) -> Path:
    """Where a dataset's snapshot of a night's run is under `root` (published/)."""
    return root / dataset / snapshot_name(ds, run_id)


def write_snapshot(
    root: Path,
    dataset: str,
    ds: str,
    run_id: str,
    table: pa.Table,
    model_version: str,
    checks: list[dict],
    provenance: dict | None = None,
) -> str:
    """Write an immutable snapshot folder; returns its path relative to the dataset folder. LATEST is untouched.

    A dataset with a contract (contracts/<dataset>/v1.json) is refused unless the table matches it; the manifest
    then records the contract's schema_version. `provenance` (what the night was built from) goes in the manifest."""
    contract = contracts.load(dataset) if contracts.contract_path(dataset).exists() else None
    if contract is not None:
        try:
            contracts.check(table, contract)
        except contracts.ContractError as exc:
            raise SnapshotError(f"refusing to publish {dataset} for {ds}: {exc}") from None
    rel = snapshot_name(ds, run_id)
    final = root / dataset / rel
    if final.exists():
        raise SnapshotError(f"snapshot {final} already exists and is immutable; use a new run id")
    staging = root / dataset / ".staging" / f"{ds}-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    files = []
    for i, start in enumerate(range(0, max(table.num_rows, 1), ROWS_PER_FILE)):
        part = table.slice(start, ROWS_PER_FILE)
        name = f"part-{i:05d}.parquet"
        pq.write_table(part, staging / name, compression="zstd")
        files.append({"path": name, "rows": part.num_rows, "sha256": sha256_of(staging / name)})
    manifest = {
        "dataset": dataset,
        "ds": ds,
        "run_id": run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "row_count": table.num_rows,
        "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "model_version": model_version,
        "checks": checks,
        "files": files,
    }
    if contract is not None:
        manifest.update(
            schema_version=contract["schema_version"],
            owner=contract["owner"],
            description=contract["description"],
            key=contract["key"],
            contract=str(contracts.contract_path(dataset).relative_to(contracts.REPO_ROOT)),
        )
    if provenance is not None:
        manifest["provenance"] = provenance
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace(staging, final)  # the whole folder appears at once, its files already on disk
    except BaseException:
        if not any(final.parent.iterdir()):
            final.parent.rmdir()
        raise
    return rel


def publish_night(root: Path, ds: str, run_id: str, written: dict[str, str]) -> bool:
    """Publish a night's snapshots of every dataset in one atomic step: NIGHT, one file replaced by rename, records
    the night as published and (unless a later night is already current: a back-filled night never moves it
    backwards) names it the current night of every dataset. The per-dataset LATEST files then follow it, for readers
    of a single dataset. Returns whether the current night moved."""
    entry: dict = {
        "run_id": run_id,
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "datasets": {},
    }
    for name, rel in sorted(written.items()):
        manifest = verify(root / name / rel)
        if not all(c.get("passed") for c in manifest["checks"]):
            raise SnapshotError(f"{name} {rel}: refusing to publish a snapshot with failed checks")
        if (manifest["ds"], manifest["run_id"]) != (ds, run_id):
            raise SnapshotError(
                f"{name} {rel}: the snapshot is of night {manifest['ds']} run {manifest['run_id']}, "
                f"not of night {ds} run {run_id}"
            )
        entry["datasets"][name] = {"snapshot": rel, "row_count": manifest["row_count"]}
    pointer = night_pointer(root) or {}
    earlier = pointer.get("nights", {}).get(ds, {})
    # every run that ever published the night (a re-run supersedes, but does not unpublish, the one before)
    entry["runs"] = [*earlier.get("runs", [earlier["run_id"]] if earlier else []), run_id]
    nights = {**pointer.get("nights", {}), ds: entry}
    moves = not pointer.get("ds") or pointer["ds"] <= ds
    current = {"ds": ds, **entry} if moves else {k: v for k, v in pointer.items() if k != "nights"}
    write_atomic(root / NIGHT_POINTER, json.dumps({**current, "nights": dict(sorted(nights.items()))}, indent=1))
    if moves:
        for name, dataset in entry["datasets"].items():
            write_atomic(
                root / name / "LATEST",
                json.dumps(
                    {
                        "snapshot": dataset["snapshot"],
                        "ds": ds,
                        "run_id": run_id,
                        "row_count": dataset["row_count"],
                        "published_at": entry["published_at"],
                    }
                ),
            )
    return moves


def night_pointer(root: Path) -> dict | None:
    """NIGHT as one read: the current night ({"ds", "run_id", "published_at", "datasets": {name: {"snapshot",
    "row_count"}}}) and every night published ("nights": {ds: ...}); None before the first publication."""
    path = root / NIGHT_POINTER
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def published_nights(root: Path) -> dict[str, dict]:
    """Every night NIGHT recorded as published: {ds: {"run_id", "published_at", "datasets"}}."""
    return (night_pointer(root) or {}).get("nights", {})


def is_published(root: Path, ds: str, run_id: str | None = None) -> bool:
    """Whether night ds (by run run_id, if given) was published, i.e. NIGHT recorded it; a run superseded by a
    later run of the same night was published all the same."""
    pointer = night_pointer(root)
    if pointer is None:  # a home published before NIGHT existed: its LATEST files moved night by night
        current = latest(root, "sesame_scores")
        return (
            bool(current)
            and current["ds"] >= ds
            and any(ds_partition(root / "sesame_scores", ds).glob(f"run={run_id or '*'}/_manifest.json"))
        )
    night = pointer.get("nights", {}).get(ds)
    return night is not None and (run_id is None or run_id in night.get("runs", [night["run_id"]]))


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))


def latest(root: Path, dataset: str) -> dict | None:
    """The current snapshot of a dataset ({"snapshot", "ds", "run_id", "row_count", ...}), as NIGHT names it."""
    pointer = night_pointer(root)
    if pointer is None:  # published before NIGHT existed
        path = root / dataset / "LATEST"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    current = pointer.get("datasets", {}).get(dataset)
    if current is None:
        return None
    return {**current, "ds": pointer["ds"], "run_id": pointer["run_id"], "published_at": pointer["published_at"]}


def verify(folder: Path) -> dict:
    """Check every file of a snapshot against its manifest; returns the manifest."""
    manifest = read_manifest(folder)
    total = 0
    for f in manifest["files"]:
        path = folder / f["path"]
        if not path.exists():
            raise SnapshotError(f"{path}: listed in the manifest but missing")
        if sha256_of(path) != f["sha256"]:
            raise SnapshotError(f"{path}: sha256 differs from the manifest; the snapshot was altered")
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != f["rows"]:
            raise SnapshotError(f"{path}: {rows} rows, manifest says {f['rows']}")
        total += rows
    if total != manifest["row_count"]:
        raise SnapshotError(f"{folder}: files hold {total} rows, manifest says {manifest['row_count']}")
    return manifest


def _open(folder: Path):
    import pyarrow.dataset as pads

    manifest = verify(folder)
    return pads.dataset([str(folder / f["path"]) for f in manifest["files"]], format="parquet")


def schema_version(manifest: dict) -> str:
    """The manifest's schema version; snapshots written before contracts existed are of version 1.0, the shape
    the first contracts describe."""
    return str(manifest.get("schema_version", "1.0"))


def open_latest(dataset: str, root: Path | None = None, major: int | None = None):
    """The current snapshot of a dataset (as NIGHT names it), checksums verified, as a pyarrow.dataset.Dataset.
    `major`: the schema's major version the reader understands; another one raises SnapshotError."""
    root = root or settings().published
    pointer = latest(root, dataset)
    if pointer is None:
        raise SnapshotError(f"nothing published yet for {dataset} under {root}")
    folder = root / dataset / pointer["snapshot"]
    if major is not None:
        version = schema_version(read_manifest(folder))
        if contracts.major_of(version) != major:
            raise SnapshotError(
                f"{dataset} {pointer['snapshot']} has schema version {version}; this reader "
                f"understands major version {major} (contracts/{dataset}/v{major}.json)"
            )
    return _open(folder)


def open_night(root: Path | None = None) -> tuple[dict, dict]:
    """Every dataset of the current night, from one read of NIGHT, so that they are of the same night whatever
    is published meanwhile: (the night's pointer, {dataset: pyarrow.dataset.Dataset}), checksums verified."""
    root = root or settings().published
    pointer = night_pointer(root)
    if pointer is None:
        raise SnapshotError(f"no night published yet under {root}")
    return pointer, {name: _open(root / name / d["snapshot"]) for name, d in pointer["datasets"].items()}


def apply_retention(root: Path, dataset: str, keep_nights: int) -> list[str]:
    """Remove all but the newest `keep_nights` nights; never what LATEST names. Returns removed folders."""
    pointer = latest(root, dataset)
    protected = pointer["snapshot"].split("/")[0] if pointer else None
    nights = [ds_partition(root / dataset, ds) for ds in reversed(ds_partitions(root / dataset))]
    removed = []
    for night in nights[keep_nights:]:
        if night.name != protected:
            shutil.rmtree(night)
            removed.append(night.name)
    # Within the night LATEST names, older runs are superseded; keep them (they are small) unless retention
    # removes the whole night.
    shutil.rmtree(root / dataset / ".staging", ignore_errors=True)
    return removed
