"""Writes that survive a crash, and one night or training run at a time per SESAME_HOME.

A rename is atomic but not durable: after a power cut the new name can point at a file whose blocks never reached
the disk, or the rename itself can be lost. So whatever is published by a rename (a snapshot folder, a pointer, the
registry, the warehouse file) is fsynced first, and the directory that holds the new name is fsynced after.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

from sesame.config import HOME_LOCK_FILE, home_lock

RUN_ID = re.compile(r"[0-9A-Za-z]{1,48}")


def checked_run_id(run_id: str) -> str:
    """A run id goes into folder names that are later deleted: letters and digits only, at most 48."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise ValueError(f"rule run_id.format: run id {run_id!r} must be 1-48 letters or digits ([0-9A-Za-z])")
    return run_id


def fsync_path(path: Path) -> None:
    """fsync one file or directory (a directory fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Every file under root, then every directory bottom-up, then root itself."""
    for folder, _subfolders, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(folder) / name)
        fsync_path(Path(folder))


def replace(src: Path, dst: Path) -> None:
    """Rename src (a file or a whole folder) to dst once its content is on disk, then make the rename durable."""
    fsync_tree(src) if src.is_dir() else fsync_path(src)
    os.replace(src, dst)
    fsync_path(dst.parent)


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old text or the new one, never half; after a crash, the one whose rename reached the disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    replace(tmp, path)


def dies_with_parent() -> None:
    """preexec_fn for a child process that writes what a night writes (spark-submit, dbt, airflow dags test): the
    kernel kills it when the process that started it dies, even by kill -9, so a re-run never races an orphan still
    writing the same partitions after the lock was released. Linux only (prctl PR_SET_PDEATHSIG); elsewhere a no-op.
    Survives exec, so spark-submit's exec into the JVM keeps it."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class Busy(RuntimeError):
    """Another night or training run holds this SESAME_HOME."""


# Set by the holder of the lock for the processes it starts (`sesame night` runs its tasks in `airflow dags test`):
# a stage that finds the lock held by the run it belongs to goes on under it.
LOCK_TOKEN_ENV = "SESAME_LOCK_TOKEN"
LOCK_FILE = HOME_LOCK_FILE


def _holder(fh) -> dict:
    fh.seek(0)
    try:
        held = json.loads(fh.read())
        return held if isinstance(held, dict) else {}
    except ValueError:
        return {}


def _describe(held: dict) -> str:
    if {"what", "pid", "since"} <= set(held):
        return f"`{held['what']}` (pid {held['pid']}, since {held['since']})"
    return "another process"


def _try_lock(fh) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise
        return False


def _ours(held: dict) -> bool:
    token = os.environ.get(LOCK_TOKEN_ENV)
    return bool(token) and held.get("token") == token


def busy_message(home: Path, who: str) -> str:
    return (
        f"{home} is busy: {who} is running; wait for it to finish (one night or training run at a time per SESAME_HOME)"
    )


@contextmanager
def exclusive(home: Path, what: str):
    """Hold the OS lock of this SESAME_HOME for the block; raise Busy naming the holder if another process has it.
    The kernel drops the lock when its holder dies, so a killed run never leaves a stale lock behind. A process
    started by the holder (it inherits LOCK_TOKEN_ENV) runs under the holder's lock instead."""
    home.mkdir(parents=True, exist_ok=True)
    fh = open(home_lock(home), "a+", encoding="utf-8")
    try:
        if not _try_lock(fh):
            held = _holder(fh)
            if not _ours(held):
                raise Busy(busy_message(home, _describe(held)))
            fh.close()
            yield
            return
        token = uuid.uuid4().hex
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "what": what,
                    "pid": os.getpid(),
                    "command": " ".join(sys.argv),
                    "token": token,
                    "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                }
            )
        )
        fh.flush()
        before = os.environ.get(LOCK_TOKEN_ENV)
        os.environ[LOCK_TOKEN_ENV] = token
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(LOCK_TOKEN_ENV, None)
            else:
                os.environ[LOCK_TOKEN_ENV] = before
    finally:
        fh.close()  # closing the file releases the lock


def holder(home: Path) -> str | None:
    """Who holds this SESAME_HOME's lock now (None: nobody, or the run this process belongs to), without taking it
    for longer than a look."""
    path = home_lock(home)
    if not path.exists():
        return None
    with open(path, "a+", encoding="utf-8") as fh:
        if _try_lock(fh):
            return None  # closing releases it
        held = _holder(fh)
        return None if _ours(held) else busy_message(Path(home), _describe(held))
