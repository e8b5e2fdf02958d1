"""Which broker the mesh talks to, and the Faust settings that follow from it.

Tansu, the embedded development broker, needs workarounds (docs/tansu.md): one record per
produce batch so table recovery is exact, short session timeouts because a stopped member
lingers. Apache Kafka gets Faust's defaults. Standby tables are off on both. A broker is taken
for Tansu when it was started embedded, when AIMESH_BROKER_KIND says so, or when it does not
offer the APIs that transactions need (Tansu lacks WriteTxnMarkers); the same check refuses
exactly-once mode. A broker that does not answer the probe gets the workarounds too: they cost
some speed on Kafka, and leaving them out on Tansu would lose table rows.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aimesh.settings import ConfigError, Settings, bootstrap_servers

log = logging.getLogger(__name__)

API_VERSIONS = 18
# What a transactional producer and the broker's commit path use: InitProducerId,
# AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, WriteTxnMarkers, TxnOffsetCommit.
TRANSACTION_APIS = {22: "InitProducerId", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn",
                    26: "EndTxn", 27: "WriteTxnMarkers", 28: "TxnOffsetCommit"}  # fmt: skip

TANSU_WORKAROUNDS: dict[str, Any] = {
    "producer_max_batch_size": 1,
    "broker_session_timeout": 10,
    "broker_rebalance_timeout": 10,
    "broker_heartbeat_interval": 3,
}


TANSU_FETCH_WAIT_MS = 100


class BrokerUnreachable(OSError):
    """No bootstrap server answered the version probe."""


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def api_versions(host: str, port: int, timeout: float = 2.0) -> set[int]:
    """The API keys a broker offers (ApiVersions v0, which every Kafka-protocol broker answers)."""
    client_id = b"aimesh-probe"
    request = struct.pack(">hhih", API_VERSIONS, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        body = _read_exactly(sock, size)
    _, error, count = struct.unpack(">ihi", body[:10])
    if error:
        raise ConnectionError(f"ApiVersions answered error code {error}")
    return {struct.unpack(">h", body[10 + 6 * i : 12 + 6 * i])[0] for i in range(count)}


def probe(url: str, timeout: float = 2.0) -> set[int]:
    """ApiVersions from the first bootstrap server that answers."""
    errors = []
    for host, port in bootstrap_servers(url):
        try:
            return api_versions(host, port, timeout)
        except (OSError, struct.error) as exc:
            errors.append(f"{host}:{port}: {exc}")
    raise BrokerUnreachable("; ".join(errors))


def missing_transaction_apis(keys: set[int]) -> list[str]:
    return [name for key, name in TRANSACTION_APIS.items() if key not in keys]


@dataclass(frozen=True)
class BrokerProfile:
    """The broker's kind, why it was judged so, and whether it offers transactions."""

    kind: str  # "kafka", "tansu", or "unknown" (the probe failed: Tansu's settings, safe anywhere)
    reason: str
    transactions: bool

    def faust_options(self, settings: Settings) -> dict[str, Any]:
        """App settings for this broker; raise ConfigError when exactly-once cannot work."""
        options: dict[str, Any] = {
            "topic_replication_factor": settings.replication,
            # Standby tables are off on every broker: on Kafka 4.4 with Faust 0.15.3, a worker
            # taking over a dead one's partitions from its standbys stalled in 1 of 2-3 runs of
            # the two-worker fault test, and 0 of 5 runs without them. That was measured before
            # the fixes in aimesh/stream/transport; standbys have not been tried again since.
            # Recovery replays the changelog.
            "table_standby_replicas": 0,
        }
        if self.kind != "kafka":
            options.update(TANSU_WORKAROUNDS)
        if settings.session_timeout:
            options.update(
                broker_session_timeout=settings.session_timeout,
                broker_rebalance_timeout=settings.session_timeout,
                broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
            )
        if settings.exactly_once:
            if not self.transactions:
                raise ConfigError(
                    "AIMESH_EXACTLY_ONCE=1 needs a broker with transactions, and this one has "
                    f"none ({self.reason}); point AIMESH_BROKER_URL at Apache Kafka, or unset it"
                )
            options["processing_guarantee"] = "exactly_once"
        return options


EMBEDDED_TANSU = BrokerProfile("tansu", "the embedded Tansu broker", transactions=False)


def detect(settings: Settings) -> BrokerProfile:
    """Judge the broker: configured kind, embedded Tansu, or what its ApiVersions show."""
    if settings.broker_kind != "auto":
        kind = settings.broker_kind
        return BrokerProfile(kind, f"AIMESH_BROKER_KIND={kind}", transactions=kind == "kafka")
    if "broker" in settings.embedded:
        return EMBEDDED_TANSU
    url = settings.broker
    try:
        keys = probe(url)
    except BrokerUnreachable as exc:
        log.warning("broker %s did not answer (%s); using settings safe on any broker", url, exc)
        reason = f"{url} did not answer the probe; AIMESH_BROKER_KIND=kafka skips it"
        return BrokerProfile("unknown", reason, transactions=False)
    missing = missing_transaction_apis(keys)
    if missing:
        reason = f"{url} lacks {', '.join(missing)}, as Tansu does"
        return BrokerProfile("tansu", reason, transactions=False)
    return BrokerProfile("kafka", f"{url} offers Kafka's transaction APIs", transactions=True)


class BrokerOptions(Mapping[str, Any]):
    """The broker-dependent Faust settings, worked out when Faust first reads its configuration
    (a worker starting, `app.config_from_object`), never when `aimesh.app` is imported: judging
    the broker opens a connection to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def profile(self) -> BrokerProfile:
        return detect(self.settings)

    @cached_property
    def _options(self) -> dict[str, Any]:
        return self.profile.faust_options(self.settings)

    def __getitem__(self, key: str) -> Any:
        return self._options[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    @property
    def fetch_max_wait_ms(self) -> int | None:
        """How long a fetch may wait for records (aimesh.stream.transport.fetch_wait): short on
        Tansu, which waits it out whole; None (Faust's 1.5 s) on Kafka, which ends it early."""
        return None if self.profile.kind == "kafka" else TANSU_FETCH_WAIT_MS
