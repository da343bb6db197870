"""Airflow's real scheduler on loopback for one SESAME_HOME, and quick read-only looks at what it did.

`running_scheduler` starts the API server, the DAG processor and the scheduler as in production (LocalExecutor,
metadata on SQLite in <home>/airflow), so that a test sees the scheduler itself create and run DAG runs rather than
`airflow dags test`. The looks read the metadata database straight, since each Airflow CLI call costs seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psutil

from sesame.cli import airflow_env, ensure_airflow
from sesame.config import Settings

T = TypeVar("T")
COMPONENTS = ("api-server", "dag-processor", "scheduler")
STARTUP_TIMEOUT = 120.0
# How long a component gets to stop on SIGTERM before it and everything it started is killed.
STOP_GRACE_SECONDS = 2.0
LOG_TAIL_CHARS = 3000


def component_log(home: Path, component: str) -> Path:
    return Path(home) / "logs" / f"airflow-{component}.log"


def metadata_db(home: Path) -> Path:
    return Path(home) / "airflow" / "airflow.db"


@dataclass
class AirflowStack:
    """The running components of one SESAME_HOME."""

    home: Path
    api_url: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def exited(self) -> dict[str, int]:
        """Components that have stopped on their own, with their exit codes."""
        return {name: proc.returncode for name, proc in self.processes.items() if proc.poll() is not None}


# The stacks running now, innermost last: wait_for names their logs when it gives up.
_running: list[AirflowStack] = []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scheduler_env(home: Path, api_port: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """The components' environment: the project's Airflow settings, tuned so that a test starts in seconds."""
    merged = airflow_env(Settings(home=Path(home)))
    merged.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # two task slots: a run's tasks are sequential, and this machine is small
            "AIRFLOW__CORE__PARALLELISM": "2",
            # task workers report to the execution API of this stack's API server, not the default localhost:8080
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # A task's supervisor can notice that its task exited only this long after (default 5 s). A reschedule-mode
            # sensor's "finished" event must reach the scheduler before the next poke is queued, or the scheduler takes
            # the late event for a task killed externally and fails the try (apache/airflow#71172).
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            # Each DAG file is parsed as soon as the processor starts, whatever the intervals say; re-parsing them every
            # 30 s (the default) would only take the CPU from the tasks, so it waits 10 minutes.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # no statistics tables in the log, whose end wait_for shows
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    merged.update(env or {})
    return merged


def _commands(api_port: int) -> dict[str, list[str]]:
    airflow = str(Path(sys.executable).parent / "airflow")
    return {
        # only the execution API, which task workers need: the UI and public API would only slow the start
        "api-server": [
            airflow,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--apps",
            "execution",
            "--workers",
            "1",
        ],
        "dag-processor": [airflow, "dag-processor"],
        # no log server: it would take a fixed port (8793), which another stack may hold
        "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
    }


def _api_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/execution/health", timeout=30) as response:
            return response.status == 200
    except OSError:
        return False


def _session_members(leader: int) -> list[psutil.Process]:
    """Every process in the leader's session: its tree, including task runners that took process groups of their
    own and children orphaned by a parent that already exited."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == leader:
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM every process of the components' sessions at once (a scheduler alone would first wait for its running
    tasks), then kill whatever is left after the grace period."""
    leaders = {proc.pid: proc for proc in processes.values()}

    def signal_all(sig: int) -> None:
        for leader, proc in leaders.items():
            if proc.poll() is None:
                proc.send_signal(sig)
            for member in _session_members(leader):
                if member.pid != leader:
                    try:
                        member.send_signal(sig)
                    except psutil.Error:
                        pass

    def all_gone(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(proc.poll() is not None for proc in leaders.values()) and not any(
                _session_members(leader) for leader in leaders
            ):
                return True
            time.sleep(0.1)
        return False

    signal_all(signal.SIGTERM)
    if not all_gone(STOP_GRACE_SECONDS):
        signal_all(signal.SIGKILL)
        all_gone(10)


def _unpause(home: Path, dag_ids: tuple[str, ...]) -> None:
    """What `airflow dags unpause` does (a flag in the dag table), without its seconds of start-up."""
    db = sqlite3.connect(metadata_db(home), timeout=30)
    try:
        with db:
            db.executemany("UPDATE dag SET is_paused = 0 WHERE dag_id = ?", [(dag_id,) for dag_id in dag_ids])
    finally:
        db.close()


def _serialized_dags(home: Path, since: dt.datetime) -> set[str]:
    """The DAGs the scheduler can plan: parsed by this DAG processor (a parse by `airflow dags test` before it
    started, with other settings, may have left another schedule in the database), and their serialized form
    stored."""
    rows = _query(
        home,
        "SELECT DISTINCT dag.dag_id, dag.last_parsed_time FROM dag JOIN serialized_dag "
        "ON serialized_dag.dag_id = dag.dag_id WHERE NOT dag.is_stale",
    )
    return {row[0] for row in rows if row[1] and _utc(row[1]) >= since}


@contextmanager
def running_scheduler(
    home: Path, env: dict[str, str] | None = None, unpause: tuple[str, ...] = ("sesame_nightly",)
) -> Iterator[AirflowStack]:
    """Run Airflow's API server, DAG processor and scheduler for `home` until the block ends, then stop them and
    everything they started, even if the block raised. The DAGs named in `unpause` are unpaused once serialized, so
    the scheduler starts creating their runs when the block begins. `env` adds to the components' environment (the
    SESAME_ settings the DAGs read when parsed and the tasks when run)."""
    home = Path(home)
    ensure_airflow(Settings(home=home))
    (home / "logs").mkdir(parents=True, exist_ok=True)
    api_port = _free_port()
    started = dt.datetime.now(dt.UTC)  # DAGs count as parsed once parsed after this
    stack = AirflowStack(home=home, api_url=f"http://127.0.0.1:{api_port}")
    component_env = scheduler_env(home, api_port, env)
    _running.append(stack)
    try:
        for name, command in _commands(api_port).items():
            with open(component_log(home, name), "ab") as log:
                # a session of its own, so that stopping reaches every process the component started
                stack.processes[name] = subprocess.Popen(
                    command,
                    env=component_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        wanted = set(unpause)
        api_answering = False

        def ready() -> bool:
            # The first request to the execution API takes seconds (it is set up lazily); it is made now, so that no
            # task's first call meets a cold API server and times out.
            nonlocal api_answering
            api_answering = api_answering or _api_healthy(stack.api_url)
            missing = wanted - _serialized_dags(home, started)
            broken = {path: trace for path, trace in import_errors(home).items() if Path(path).stem in missing}
            if broken:  # this project names each DAG's file after it
                raise AssertionError("a DAG to unpause does not import:\n" + "\n".join(broken.values()))
            return api_answering and not missing

        wait_for(
            ready,
            STARTUP_TIMEOUT,
            f"the API server to answer and the DAG processor to serialize {sorted(wanted)}",
            interval=0.25,
        )
        _unpause(home, tuple(unpause))
        yield stack
    finally:
        _running.remove(stack)
        _stop(stack.processes)


# ------------------------------------------------------------------ looks at the metadata database


def _query(home: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    """Rows from the metadata database, read-only: the look never takes a write lock from Airflow."""
    path = metadata_db(home)
    if not path.exists():
        return []
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def _utc(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def dag_runs(home: Path, dag_id: str) -> list[dict]:
    """The DAG's runs, oldest logical date first: run_id, run_type, state and UTC datetimes logical_date,
    data_interval_start and data_interval_end."""
    rows = _query(
        home,
        "SELECT run_id, run_type, logical_date, data_interval_start, data_interval_end, state "
        "FROM dag_run WHERE dag_id = ? ORDER BY logical_date, id",
        (dag_id,),
    )
    return [
        {
            "run_id": row["run_id"],
            "run_type": row["run_type"],
            "logical_date": _utc(row["logical_date"]),
            "data_interval_start": _utc(row["data_interval_start"]),
            "data_interval_end": _utc(row["data_interval_end"]),
            "state": row["state"],
        }
        for row in rows
    ]


def import_errors(home: Path) -> dict[str, str]:
    """The DAG files that failed to import at their latest parse, with the tracebacks."""
    return {row["filename"]: row["stacktrace"] for row in _query(home, "SELECT filename, stacktrace FROM import_error")}


def task_states(home: Path, dag_id: str, run_id: str) -> dict[str, str | None]:
    """Each task's state in the run, as of its latest try (None: not scheduled yet)."""
    rows = _query(
        home,
        "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY map_index",
        (dag_id, run_id),
    )
    return {row["task_id"]: row["state"] for row in rows}


# ------------------------------------------------------------------ waiting


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    if len(text) <= LOG_TAIL_CHARS:
        return text
    tail = text[-LOG_TAIL_CHARS:]
    return tail[tail.find("\n") + 1 :]  # from a line's start


def _newest_task_log(home: Path) -> Path | None:
    logs = list((Path(home) / "airflow" / "logs").glob("dag_id=*/**/*.log"))
    return max(logs, key=lambda path: path.stat().st_mtime) if logs else None


def diagnosis(stack: AirflowStack) -> str:
    """The components' exit codes, the DAG files' import errors and the ends of the components' logs and of the
    newest task log."""
    parts = [f"{name} exited with code {code}" for name, code in stack.exited().items()]
    parts += [
        f"----- {path} does not import:\n{trace[-LOG_TAIL_CHARS:]}" for path, trace in import_errors(stack.home).items()
    ]
    for name in COMPONENTS:
        parts.append(f"----- end of {component_log(stack.home, name)}\n{_tail(component_log(stack.home, name))}")
    task_log = _newest_task_log(stack.home)
    if task_log:
        parts.append(f"----- end of {task_log}\n{_tail(task_log)}")
    return "\n".join(parts)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll `predicate` until it returns something true, and return that. Gives up with an AssertionError after
    `timeout` seconds, or as soon as an Airflow component has exited, with the ends of the components' logs."""
    stack = _running[-1] if _running else None
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if stack is not None and stack.exited():
            raise AssertionError(f"while waiting for {what}, an Airflow component exited:\n{diagnosis(stack)}")
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}"
                + (f"\n{diagnosis(stack)}" if stack is not None else "")
            )
        time.sleep(interval)
