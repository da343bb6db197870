"""The one way Sesame runs dbt on the project in dbt/: the night's builds (DuckDB target) and the SQL endpoint's
(spark target) both come through `run_dbt`.

The user-key secret reaches dbt through the environment and ends up in clear in compiled SQL, dbt.log and the
partial-parse state: every command runs in a private work folder that goes when it ends, what dbt prints and the
log a failure keeps have the secret blanked out, and the secret is checked before dbt sees it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sesame import durable
from sesame.config import REPO_ROOT, Settings

DBT_PROJECT = REPO_ROOT / "dbt"  # the project and its profiles.yml
_ERROR_MARKERS = ("ERROR", "FAIL", "Failure", "Error")


class DbtFailed(RuntimeError):
    """A dbt command failed (or the secret it would get is unsafe); the message says which and where its log is."""


def dbt_env(
    cfg: Settings,
    warehouse: Path | None = None,
    extra: dict[str, str] | None = None,
    failure: type[Exception] = DbtFailed,
) -> dict:
    """dbt's environment: SESAME_HOME, the user-key secret (checked first: `failure` if unsafe), the DuckDB file to
    build into (`warehouse`, DuckDB target only), anything the target needs (`extra`), and no usage telemetry."""
    from sesame.config import UnsafeSecret, check_user_key_secret

    try:
        check_user_key_secret(cfg)
    except UnsafeSecret as exc:
        raise failure(f"rule secret.user_key: {exc}") from None
    env = dict(os.environ)
    env.update(
        {
            "SESAME_HOME": str(cfg.home),
            **({"SESAME_WAREHOUSE_PATH": str(warehouse)} if warehouse is not None else {}),
            "SESAME_USER_KEY_SECRET": cfg.user_key_secret,
            **(extra or {}),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
    )
    return env


@contextmanager
def private_dbt_work(cfg: Settings):
    """A folder of one dbt build's own (mode 0700) for its target and logs, removed when the build ends: compiled
    SQL, dbt.log and the partial-parse state all hold the user-key secret in clear."""
    import tempfile

    parent = cfg.dbt_work_root
    parent.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_dbt_work(parent)
    work = Path(tempfile.mkdtemp(prefix=f"work-{os.getpid()}-", dir=parent))  # 0700
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_orphaned_dbt_work(parent: Path) -> None:
    """Work folders of dbt runs whose process is gone (killed -9: no `finally` ran), secret and all."""
    for folder in parent.glob("work-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def redacted(text: str, cfg: Settings) -> str:
    return text.replace(cfg.user_key_secret, "<SESAME_USER_KEY_SECRET>") if cfg.user_key_secret else text


def keep_failed_dbt_log(cfg: Settings, work: Path, ds: str, command: str) -> Path:
    """The failed command's dbt.log, secret blanked out, under $SESAME_HOME/logs/dbt/ (its work folder goes)."""
    log = work / "logs" / "dbt.log"
    kept = cfg.failed_dbt_log(command, ds, dt.datetime.now(dt.timezone.utc))
    kept.parent.mkdir(parents=True, exist_ok=True)
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(dbt wrote no log)\n"
    durable.write_atomic(kept, redacted(text, cfg))
    return kept


def run_dbt(
    cfg: Settings,
    command: list[str],
    ds: str,
    *,
    warehouse: Path | None = None,
    target: str | None = None,
    target_path: Path | None = None,
    more_vars: dict | None = None,
    allow_failure: bool = False,
    work: Path | None = None,
    extra_env: dict[str, str] | None = None,
    cwd: Path | None = None,
    echo: bool = True,
    failure: type[Exception] = DbtFailed,
) -> int:
    """Run `dbt <command> [--target <target>]` on the project in dbt/ for the night `ds` (var ds, with `more_vars`)
    and return its exit code.

    `warehouse`: the DuckDB file to build into; `target`: the profile's output (default: the profile's own, duckdb);
    `extra_env`: what the target reads from the environment; `cwd`: dbt's working directory. `work` is the
    private_dbt_work of a build whose artifacts the caller reads; without it the command gets one of its own.
    `echo` writes what dbt printed to stdout. A non-zero exit raises `failure` (the failed log kept, see
    keep_failed_dbt_log) unless `allow_failure`, as for source freshness, which exits 1 on a stale source. What dbt
    prints, and the log a failure keeps, have the secret blanked out."""
    # a command without its caller's work folder gets one of its own, removed after it
    with private_dbt_work(cfg) if work is None else nullcontext(work) as work:
        env = dbt_env(cfg, warehouse, extra_env, failure)
        shown = [*command, *(["--target", target] if target else [])]
        cmd = [
            str(Path(sys.executable).parent / "dbt"),
            *shown,
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target-path",
            str(target_path or work / "target"),
            "--log-path",
            str(work / "logs"),
            "--vars",
            json.dumps({"ds": ds, **(more_vars or {})}),
        ]
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=durable.dies_with_parent,
        )
        output = redacted(proc.stdout, cfg)
        if echo:
            sys.stdout.write(output[-20000:])
        if proc.returncode != 0 and not allow_failure:
            errors = [ln for ln in output.splitlines() if any(marker in ln for marker in _ERROR_MARKERS)]
            kept = keep_failed_dbt_log(cfg, work, ds, "-".join([command[0], *([target] if target else [])]))
            raise failure(
                f"dbt {' '.join(shown)} failed for the night {ds}: " + " | ".join(errors[-8:]) + f". Full log: {kept}"
            )
        return proc.returncode
