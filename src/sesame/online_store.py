"""The night's write into Feast's Redis online store, in bulk.

Feast's own online write (`FeatureStore.write_to_online_store`) turns every value into a protobuf message in
Python and sends one command per user and feature view; at 1,000,000 users and 28 features that is minutes (see
BENCHMARKS.md, the `online_store` profile). This writes the very bytes Feast's Redis store keeps - one hash per
user, keyed by Feast's serialized entity key and the project; per view a `_ts:<view>` field holding the event time
as a protobuf Timestamp, and per feature a field named by the murmur3 hash of `<view>:<feature>` holding the
serialized protobuf Value - built with numpy for a block of users at a time and sent as one pipelined stream of
HSET commands (Redis's own protocol; its documented way of mass insertion). Feast reads them back with its own
`get_online_features`; tests/test_online_store.py holds the bytes to those of Feast's own write.

Values whose Feast type is Float64 are encoded as arrays (tag and eight little-endian bytes; an empty Value for a
missing one); any other type goes through Feast's own converter once per distinct value.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Users per block: each block is one stream of commands, about 1 kB per user at 28 features.
BLOCK_USERS = 50_000

_CRLF = np.frombuffer(b"\r\n", dtype=np.uint8)
# A protobuf Value's double_val: field 5, wire type 1 (64 bits).
_DOUBLE_TAG = 0x29


class OnlineWriteError(RuntimeError):
    """The online store refused part of a night's write."""


def redis_connection_string(url: str) -> str:
    """`redis://[:password@]host:port[/db]` as Feast's connection string (`host:port,db=N,password=...`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"SESAME_ONLINE_STORE={url!r}: expected sqlite or redis://[:password@]host:port[/db]")
    options = [f"{parts.hostname}:{parts.port or 6379}"]
    if parts.path.strip("/"):
        options.append(f"db={int(parts.path.strip('/'))}")
    if parts.password:
        options.append(f"password={urllib.parse.unquote(parts.password)}")
    if parts.scheme == "rediss":
        options.append("ssl=true")
    return ",".join(options)


@dataclass
class _Bulk:
    """One RESP bulk string per user: row i is data[i, :lengths[i]]."""

    lengths: np.ndarray
    data: np.ndarray

    @classmethod
    def constant(cls, value: bytes, n: int) -> _Bulk:
        return cls(np.full(n, len(value)), np.frombuffer(value, dtype=np.uint8)[None, :].repeat(n, axis=0))

    @classmethod
    def from_codes(cls, codes: np.ndarray, values: list[bytes]) -> _Bulk:
        """Row i holds values[codes[i]]: few distinct values, each encoded once."""
        width = max((len(v) for v in values), default=0)
        table = np.zeros((len(values), max(width, 1)), dtype=np.uint8)
        for i, v in enumerate(values):
            table[i, : len(v)] = np.frombuffer(v, dtype=np.uint8)
        return cls(np.array([len(v) for v in values], dtype=np.int64)[codes], table[codes])

    @classmethod
    def from_list(cls, values: list[bytes]) -> _Bulk:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        if len(values) and (lengths == lengths[0]).all():
            return cls(lengths, np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), lengths[0]))
        return cls.from_codes(np.arange(len(values)), values)

    def resp_lengths(self) -> np.ndarray:
        """Bytes of `$<len>\\r\\n<data>\\r\\n` per row."""
        digits = 1 + sum((self.lengths >= 10**k).astype(np.int64) for k in range(1, 10))
        return 1 + digits + 2 + self.lengths + 2

    def put(self, buffer: np.ndarray, positions: np.ndarray) -> None:
        """Write each row's `$<len>\\r\\n<data>\\r\\n` at its position, one group of rows per distinct length."""
        for length in np.unique(self.lengths):
            rows = np.flatnonzero(self.lengths == length)
            header = np.frombuffer(b"$%d\r\n" % length, dtype=np.uint8)
            piece = np.concatenate(
                [
                    np.broadcast_to(header, (len(rows), len(header))),
                    self.data[rows, :length],
                    np.broadcast_to(_CRLF, (len(rows), 2)),
                ],
                axis=1,
            )
            buffer[positions[rows, None] + np.arange(piece.shape[1])] = piece


def _doubles(values: pd.Series) -> _Bulk:
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    data = np.empty((len(numbers), 9), dtype=np.uint8)
    data[:, 0] = _DOUBLE_TAG
    data[:, 1:] = numbers.astype("<f8").view(np.uint8).reshape(-1, 8)
    return _Bulk(np.where(np.isnan(numbers), 0, 9), data)


def _by_feast(values: pd.Series, value_type) -> _Bulk:
    """Any other type: Feast's own conversion, once per distinct value."""
    from feast.type_map import python_values_to_proto_values

    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    protos = python_values_to_proto_values(list(uniques), value_type)
    return _Bulk.from_codes(codes, [p.SerializeToString() for p in protos])


def _timestamps(values: pd.Series) -> _Bulk:
    """Feast's `_ts:<view>` field: the event time as a protobuf Timestamp (UTC, microseconds)."""
    from feast.utils import make_tzaware
    from google.protobuf.timestamp_pb2 import Timestamp

    moments = pd.to_datetime(values, utc=True)
    if moments.isna().any():
        raise ValueError(f"online write: {int(moments.isna().sum())} rows without an event time ({values.name})")
    codes, uniques = pd.factorize(moments)
    encoded = []
    for moment in uniques:
        ts = Timestamp()
        ts.FromDatetime(make_tzaware(moment.to_pydatetime()))
        encoded.append(ts.SerializeToString())
    return _Bulk.from_codes(codes, encoded)


def _hset_stream(keys: _Bulk, fields: list[tuple[bytes, _Bulk]]) -> bytes:
    """`HSET key field value ...` for every row, in Redis's protocol."""
    n = len(keys.lengths)
    command = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * len(fields))
    names = [_Bulk.constant(name, n) for name, _ in fields]
    bulks = [keys, *(b for pair in zip(names, (v for _, v in fields)) for b in pair)]
    lengths = [np.full(n, len(command)), *(b.resp_lengths() for b in bulks)]
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = np.cumsum(sum(lengths))[:-1]
    buffer = np.empty(int(sum(int(x.sum()) for x in lengths)), dtype=np.uint8)
    buffer[starts[:, None] + np.arange(len(command))] = np.frombuffer(command, dtype=np.uint8)
    positions = starts + len(command)
    for bulk, size in zip(bulks, lengths[1:]):
        bulk.put(buffer, positions)
        positions = positions + size
    return buffer.tobytes()


def write_views(store, view_names: list[str], rows: pd.DataFrame, timestamp_column: str = "feature_timestamp") -> int:
    """Write `rows` (one per entity: its join key, the event time and every feature of the views) into the Redis
    online store of `store` (a Feast FeatureStore whose registry has the views), as Feast's own write would leave
    it. Returns the users written.

    The views must share one entity with a single join key, as Sesame's user views do."""
    from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.types import Float64

    config = store.config
    views = [store.get_feature_view(name) for name in view_names]
    join_keys = {column.name for view in views for column in view.entity_columns}
    if len(join_keys) != 1:
        raise ValueError(f"write_views: the views must share one join key, not {sorted(join_keys)}")
    (join_key,) = join_keys
    key_type = views[0].entity_columns[0].dtype.to_value_type()
    versioned = config.registry.enable_online_feature_view_versioning
    project = config.project.encode("utf-8")
    # Feast's own client for the configured connection string (host, port, db, password, ssl).
    client = RedisOnlineStore()._get_client(config.online_store)
    written = 0
    # One block is sent (and its replies read) while the next is encoded.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as sender:
        pending = None
        for start in range(0, len(rows), BLOCK_USERS):
            block = rows.iloc[start : start + BLOCK_USERS]
            keys = _entity_keys(block[join_key], join_key, key_type, config, project)
            event_times = _timestamps(block[timestamp_column])
            fields: list[tuple[bytes, _Bulk]] = []
            for view in views:
                name = compute_versioned_name(view, versioned)
                fields.append((f"_ts:{name}".encode(), event_times))
                for feature in view.features:
                    values = block[feature.name]
                    encoded = (
                        _doubles(values)
                        if feature.dtype == Float64
                        else _by_feast(values, feature.dtype.to_value_type())
                    )
                    fields.append((_mmh3(f"{name}:{feature.name}"), encoded))
            stream = _hset_stream(keys, fields)
            if pending is not None:
                pending.result()
            pending = sender.submit(_send, client, stream, len(block), view_names)
            written += len(block)
        if pending is not None:
            pending.result()
    return written


def _entity_keys(values: pd.Series, join_key: str, key_type, config, project: bytes) -> _Bulk:
    """Feast's Redis keys: the serialized entity key, then the project. For one string join key (Sesame's user),
    the serialization's fixed head and each id's length and bytes are put together here, checked against Feast's
    own serialization on the first id; any other key goes through Feast's serializer."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    def feast_key(value) -> bytes:
        entity = EntityKey(join_keys=[join_key], entity_values=[value])
        return serialize_entity_key(entity, config.entity_key_serialization_version) + project

    if key_type != ValueType.STRING or config.entity_key_serialization_version != 3:
        return _Bulk.from_list([feast_key(v) for v in python_values_to_proto_values(values.tolist(), key_type)])
    name = join_key.encode("utf-8")
    head = struct.pack("<III", 1, ValueType.STRING.value, len(name)) + name + struct.pack("<I", ValueType.STRING.value)
    encoded = [v.encode("utf-8") for v in values.tolist()]
    keys = [head + struct.pack("<I", len(v)) + v + project for v in encoded]
    if keys and keys[0] != feast_key(python_values_to_proto_values(values.iloc[:1].tolist(), key_type)[0]):
        raise OnlineWriteError(f"Feast serializes the entity key {join_key!r} differently from this writer")
    return _Bulk.from_list(keys)


def _send(client, stream: bytes, commands: int, views: list[str]) -> None:
    """Send the stream on one connection and read every reply; an error reply stops the night's write."""
    from redis.exceptions import RedisError

    connection = client.connection_pool.get_connection()
    try:
        connection.send_packed_command([stream], check_health=False)
        for _ in range(commands):
            connection.read_response()
    except RedisError as error:
        # replies may be left unread: this connection is not reused
        connection.disconnect()
        where = f"{connection.host}:{connection.port}/{connection.db}"
        raise OnlineWriteError(
            f"online store (Redis at {where}) refused the write of views {views}: {error}"
        ) from error
    finally:
        client.connection_pool.release(connection)


@contextlib.contextmanager
def local_redis(folder: Path, *options: str) -> Iterator[str]:
    """A redis-server (Debian's `redis-server`) on a free loopback port for the duration, its files in `folder`
    and no snapshots on disk unless `options` ask for them; yields its redis:// URL. For the tests and the
    benchmarks: a deployment runs its own (docker-compose.yml)."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server not found (Debian package redis-server; `make redis` installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "", "--appendonly", "no"]
        + list(options),
        stdout=(folder / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {(folder / 'redis.log').read_text()[-500:]}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
