"""Published snapshots for downstream services: write (immutable folder + manifest, then an atomic LATEST)
and read (verify the manifest's checksums, return an Arrow dataset).

    published/<dataset>/LATEST                         {"snapshot": "ds=YYYY-MM-DD/run=<run_id>", ...}
    published/<dataset>/ds=YYYY-MM-DD/run=<run_id>/    part-*.parquet + _manifest.json

A snapshot is assembled in a hidden staging folder and renamed into place whole; LATEST is replaced by rename.
So a reader either sees the previous snapshot or the complete new one, and a night killed half way leaves
LATEST and everything it names untouched.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sesame.config import settings
from sesame.durable import replace, write_atomic

ROWS_PER_FILE = 500_000

# Publish also leaves this file in the night's lake scores (lake/scores/ds=...), so that later nights know
# which scores went out (the social feature of neighbours' last published scores); Spark skips "_" files.
PUBLISHED_MARKER = "_PUBLISHED"

# Beside every dataset, what it is and who answers for it.
DATASETS = {
    "sesame_scores": {
        "owner": "sesame-risk-engineering",
        "description": "One row per scored user for the night: score 350-950, tier, five factor sub-scores, "
                       "reason codes, model version. Identifies people by upstream user_id (trusted consumers).",
    },
    "visa_eligibility": {
        "owner": "sesame-risk-engineering",
        "description": "One row per eligible user per destination for the night, with the rule version applied.",
    },
}


class SnapshotError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_snapshot(root: Path, dataset: str, ds: str, run_id: str, table: pa.Table, model_version: str,
                   checks: list[dict]) -> str:
    """Write an immutable snapshot folder; returns its path relative to the dataset folder. LATEST is untouched."""
    rel = f"ds={ds}/run={run_id}"
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
        "dataset": dataset, "ds": ds, "run_id": run_id,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "row_count": table.num_rows,
        "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "model_version": model_version, "checks": checks, "files": files,
        **DATASETS.get(dataset, {}),
    }
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace(staging, final)  # the whole folder appears at once, its files already on disk
    except BaseException:
        if not any(final.parent.iterdir()):
            final.parent.rmdir()
        raise
    return rel


def flip_latest(root: Path, dataset: str, rel: str) -> None:
    """Point LATEST at a complete snapshot whose checks passed (atomic rename), unless it names a later night."""
    manifest = read_manifest(root / dataset / rel)
    if not all(c.get("passed") for c in manifest["checks"]):
        raise SnapshotError(f"{dataset} {rel}: refusing to publish a snapshot with failed checks")
    current = latest(root, dataset)
    if current and current["ds"] > manifest["ds"]:
        return  # a back-filled older night never moves LATEST backwards
    write_atomic(root / dataset / "LATEST", json.dumps({
        "snapshot": rel, "ds": manifest["ds"], "run_id": manifest["run_id"], "row_count": manifest["row_count"],
        "published_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}))


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "_manifest.json").read_text(encoding="utf-8"))


def latest(root: Path, dataset: str) -> dict | None:
    path = root / dataset / "LATEST"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


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


def open_latest(dataset: str, root: Path | None = None):
    """The snapshot LATEST names, checksums verified, as a pyarrow.dataset.Dataset."""
    import pyarrow.dataset as pads

    root = root or settings().published
    pointer = latest(root, dataset)
    if pointer is None:
        raise SnapshotError(f"nothing published yet for {dataset} under {root}")
    folder = root / dataset / pointer["snapshot"]
    manifest = verify(folder)
    return pads.dataset([str(folder / f["path"]) for f in manifest["files"]], format="parquet")


def apply_retention(root: Path, dataset: str, keep_nights: int) -> list[str]:
    """Remove all but the newest `keep_nights` nights; never what LATEST names. Returns removed folders."""
    pointer = latest(root, dataset)
    protected = pointer["snapshot"].split("/")[0] if pointer else None
    nights = sorted((p for p in (root / dataset).glob("ds=*") if p.is_dir()), reverse=True)
    removed = []
    for night in nights[keep_nights:]:
        if night.name != protected:
            shutil.rmtree(night)
            removed.append(night.name)
    # Within the night LATEST names, older runs are superseded; keep them (they are small) unless retention
    # removes the whole night.
    shutil.rmtree(root / dataset / ".staging", ignore_errors=True)
    return removed
