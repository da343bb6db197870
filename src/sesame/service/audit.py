"""Append-only, hash-chained audit log of the service: who (API key id, never the key; `cli:<user>` for an operator's
command) did what to whom (the pseudonymous user_key, never the upstream id), when, and the outcome. One JSON object
per line in $SESAME_HOME/service/audit.jsonl (mode 0600):

    {"seq":42,"at":"2026-11-24T08:00:00.123Z","key_id":"3f2a9c0b1d4e","action":"scores.lookup",
     "user_key":"9c1e...","destination":null,"status":200,"outcome":"found","prev":"5b0f...","hash":"e3a7..."}

Only validated values are recorded: a user_key only for a user id of the valid form, a destination only for a
two-letter code; a malformed one is recorded as `"user_id_invalid": true` (or `destination_invalid`), never as text.

The chain. `seq` numbers the lines from 1; `prev` is the sha256 (hex) of the previous line's exact bytes, newline
included (64 zeros before line 1); `hash` is the sha256 of the line's own bytes before `,"hash"`. A changed byte
breaks its line's hash; a removed, inserted, repeated or reordered line breaks `seq` or `prev`; a cut line has no
newline. `sesame audit verify` checks every line and names the first bad one. The chain shows a change; it cannot
stop someone who rewrites every line from the change on, and lines removed from the end of the current file leave
no trace in it: keep the last line's hash elsewhere (a report, another machine) to anchor it.

Writers (the service's workers, CLI commands) append under an exclusive lock of `.audit.jsonl.lock` beside the log:
read the file's last line, write the next one with a single write to an O_APPEND descriptor, fsync, unlock. Each
line continues from what the file holds at that moment, so restarts and concurrent processes keep one chain.

Rotation. Rename audit.jsonl to `audit.jsonl.<suffix>` (`audit.jsonl.1`, `audit.jsonl.2`, ... or
`audit.jsonl-20261124`, as logrotate names them; left uncompressed). Writers notice at their next line (the path's
inode changed, or it is gone; a copy-and-truncate leaves it empty) and start a new audit.jsonl whose first line
continues the chain from the last line of the newest rotated file. `verify` reads the rotated files, ordered by
their place in the chain, then audit.jsonl, as one chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sesame.privacy import user_key
from sesame.service.models import DESTINATION_PATTERN, USER_ID_PATTERN

GENESIS = "0" * 64
CHAIN_FIELDS = {"seq", "prev", "hash"}
_USER_ID = re.compile(USER_ID_PATTERN)
_DESTINATION = re.compile(DESTINATION_PATTERN)
_HASH_AT_END = re.compile(rb',"hash":"([0-9a-f]{64})"\}\Z')
_SEQ_AT_START = re.compile(rb'\{"seq":(\d+),')
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_fdatasync = getattr(os, "fdatasync", os.fsync)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lock_path(path: Path) -> Path:
    # a dot file, so that no rotation pattern (audit.jsonl.*) takes it for a log
    return path.with_name(f".{path.name}.lock")


def rotated_files(path: Path) -> list[Path]:
    """The rotated siblings of the log (unordered): audit.jsonl.<suffix> or audit.jsonl-<suffix>, uncompressed."""
    if not path.parent.is_dir():
        return []
    return [
        p
        for p in path.parent.iterdir()
        if p.name.startswith((f"{path.name}.", f"{path.name}-")) and not p.name.endswith(_COMPRESSED) and p.is_file()
    ]


def validated(user_id: str | None, destination: str | None, secret: str) -> dict:
    """user_key and destination from values of the valid form only: a malformed one may be anything (an id with a
    typo, someone's name, an injection attempt), so it is recorded as malformed, never as text or as a hash."""
    out: dict = {"user_key": None, "destination": None}
    if user_id is not None:
        if isinstance(user_id, str) and _USER_ID.fullmatch(user_id):
            out["user_key"] = user_key(user_id, secret)
        else:
            out["user_id_invalid"] = True
    if destination is not None:
        if isinstance(destination, str) and _DESTINATION.fullmatch(destination):
            out["destination"] = destination.upper()
        else:
            out["destination_invalid"] = True
    return out


def chain_line(fields: dict, seq: int, prev: str) -> bytes:
    """One line of the chain: the fields between `seq` and `prev`, then the hash of every byte before it."""
    body = json.dumps({"seq": seq, **fields, "prev": prev}, separators=(",", ":"))[:-1].encode("ascii")
    return body + b',"hash":"' + _sha256(body).encode("ascii") + b'"}\n'


def next_link(last_line: bytes | None) -> tuple[int, str]:
    """(seq, prev) of the line after `last_line` (None: the chain starts). A damaged last line is still linked
    to, by its bytes as they are, so that verify names it rather than a gap."""
    if last_line is None:
        return 1, GENESIS
    head = _SEQ_AT_START.match(last_line)
    ended = last_line if last_line.endswith(b"\n") else last_line + b"\n"
    return (int(head.group(1)) + 1 if head else 1), _sha256(ended)


def read_last_line(fd: int, size: int) -> bytes | None:
    """The last line of an open file of `size` bytes, newline included if it has one; None when empty."""
    end, tail = size, b""
    while end > 0:
        start = max(0, end - 8192)
        tail = os.pread(fd, end - start, start) + tail
        cut = tail.rfind(b"\n", 0, len(tail) - 1)  # the newline before the last line, not the one ending it
        if cut >= 0:
            return tail[cut + 1 :]
        end = start
    return tail or None


def _last_line_of(path: Path) -> bytes | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_last_line(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def last_rotated_line(path: Path) -> bytes | None:
    """The last line of the newest rotated file (by its seq): where a new audit.jsonl continues the chain."""
    best, best_seq = None, -1
    for rotated in rotated_files(path):
        line = _last_line_of(rotated)
        head = _SEQ_AT_START.match(line or b"")
        if head and int(head.group(1)) > best_seq:
            best, best_seq = line, int(head.group(1))
    return best


class AuditLog:
    """The writer. One per process is enough; several (processes or instances) keep one chain through the lock."""

    def __init__(self, path: Path, user_key_secret: str):
        self.path = path
        self._secret = user_key_secret
        self._thread_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None
        with self._locked():
            self._current_fd()

    @contextlib.contextmanager
    def _locked(self):
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def record(
        self,
        *,
        key_id: str | None,
        action: str,
        status: int,
        outcome: str,
        user_id: str | None = None,
        destination: str | None = None,
        **extra,
    ) -> None:
        """Append one line; it is on disk when this returns (the response leaves only after it)."""
        if CHAIN_FIELDS & extra.keys():
            raise ValueError(f"{sorted(CHAIN_FIELDS & extra.keys())} belong to the chain")
        fields = {
            "at": None,
            "key_id": key_id,
            "action": action,
            **validated(user_id, destination, self._secret),
            "status": status,
            "outcome": outcome,
            **extra,
        }
        with self._locked():
            fields["at"] = _now()  # under the lock, so that times follow the chain's order
            self._append(fields)

    def _append(self, fields: dict) -> None:
        fd = self._current_fd()
        size = os.fstat(fd).st_size
        last = read_last_line(fd, size)  # always read: another process may have appended since
        if last is None:  # a new (or truncated) file: the chain goes on from the rotated one
            last = last_rotated_line(self.path)
        line = chain_line(fields, *next_link(last))
        if size and not last.endswith(b"\n"):
            line = b"\n" + line  # a cut last line stays a line of its own, for verify to name
        _write_all(fd, line)
        _fdatasync(fd)

    def _current_fd(self) -> int:
        """The descriptor of the file at the path now, reopened when the file was rotated away or removed."""
        try:
            st = os.stat(self.path)
            current = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if self._fd is not None and current == self._inode:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)
        if current is None:  # created: make its name durable too
            _fsync_dir(self.path.parent)
        return self._fd

    def close(self) -> None:
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------------------------- reading, verifying
def read_entries(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse_line(line: bytes) -> tuple[dict | None, str | None]:
    """(entry, None) for a line (without its newline) whose hash matches its bytes, else (None, why not)."""
    found = _HASH_AT_END.search(line)
    if found is None:
        return None, 'it does not end with a "hash": not a line of the chain, or damaged at its end'
    if _sha256(line[: found.start()]) != found.group(1).decode("ascii"):
        return None, "altered: its bytes do not match its hash"
    try:
        entry = json.loads(line)
    except ValueError:
        return None, "not valid JSON"
    if not isinstance(entry, dict) or type(entry.get("seq")) is not int or not isinstance(entry.get("prev"), str):
        return None, "it has no seq or prev"
    return entry, None


def _chain_position(fh) -> int:
    """The seq a file's first line has, from its first intact line (one damaged line does not misplace the file);
    -1 when none is intact, so such a file is read, and reported, first."""
    for index, raw in enumerate(fh):
        entry, _ = parse_line(raw.rstrip(b"\n"))
        if entry is not None:
            return entry["seq"] - index
    return -1


@dataclass
class ChainCheck:
    lines: int  # lines verified (before the bad one, if any)
    files: list[Path] = field(default_factory=list)
    first_seq: int | None = None
    problem: str | None = None  # why the bad line is bad
    file: Path | None = None
    line: int | None = None  # its number in its file, from 1

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check(raw: bytes, expected: int | None, previous: bytes | None, allow_pruned: bool) -> tuple[int, str | None]:
    """(seq, why the line breaks the chain or None) for one line read from a file."""
    if not raw.endswith(b"\n"):
        return 0, "cut short: the file ends inside this line (truncated, or a write that did not finish)"
    entry, problem = parse_line(raw[:-1])
    if problem:
        return 0, problem
    seq, prev = entry["seq"], entry["prev"]
    if expected is None:  # the first line of the chain
        if seq == 1 and prev != GENESIS:
            return seq, f"seq 1 must follow the genesis value ({GENESIS[:8]}...), not {prev[:8]}..."
        if seq != 1 and not allow_pruned:
            return seq, (
                f"the chain starts at seq {seq}: lines 1 to {seq - 1} are missing (rotated files removed "
                "by retention? --allow-pruned accepts a chain that starts later)"
            )
        return seq, None
    if seq > expected:
        return seq, f"seq {seq} where {expected} was due: {seq - expected} line(s) missing before it, or out of order"
    if seq < expected:
        return seq, f"seq {seq} where {expected} was due: a line repeated or out of order"
    if prev != _sha256(previous):
        return seq, "its prev is not the hash of the line before it: that line was replaced"
    return seq, None


@contextlib.contextmanager
def _no_writer(path: Path):
    """Hold writers off while the files are opened, so that no line is read half-written."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except FileNotFoundError:  # a copy of a log, away from its writers
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _open_chain(path: Path) -> list[tuple[Path, object, int]]:
    """(file, handle, size now) of the rotated files in chain order, then the current file."""
    opened = []
    with _no_writer(path):
        for p in rotated_files(path) + ([path] if path.exists() else []):
            fh = open(p, "rb")
            opened.append((p, fh, os.fstat(fh.fileno()).st_size))
    current = [o for o in opened if o[0] == path]
    rotated = [o for o in opened if o[0] != path]
    positions = {o[0]: _chain_position(o[1]) for o in rotated}
    for _, fh, _ in rotated:
        fh.seek(0)
    return sorted(rotated, key=lambda o: (positions[o[0]], o[0].name)) + current


def verify_chain(path: Path, allow_pruned: bool = False) -> ChainCheck:
    """Check the chain through the rotated files and the current one; stop at the first bad line."""
    opened = _open_chain(path)
    check = ChainCheck(lines=0, files=[o[0] for o in opened])
    expected, previous = None, None
    try:
        for file, fh, size in opened:
            read = 0
            for number, raw in enumerate(fh, 1):
                read += len(raw)
                if read > size:  # appended after verify began
                    break
                seq, problem = _check(raw, expected, previous, allow_pruned)
                if problem:
                    check.problem, check.file, check.line = problem, file, number
                    return check
                if check.first_seq is None:
                    check.first_seq = seq
                check.lines, expected, previous = check.lines + 1, seq + 1, raw
    finally:
        for _, fh, _ in opened:
            fh.close()
    return check
