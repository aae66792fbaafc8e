"""What a service process reads from its environment (pydantic-settings).

`KAFKA_BOOTSTRAP` and `DATABASE_URL` are read as they are named (the names `sn51 infra` and the deploy
manifests export); everything else takes the `SN51_` prefix, e.g. `SN51_API_PORT`, `SN51_LOG_LEVEL`,
`SN51_TOPIC_PREFIX`. The service name comes from the `ServiceSpec` being run, not from the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SN51_", populate_by_name=True, extra="ignore")

    service: str = ""
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "SN51_KAFKA_BOOTSTRAP", "kafka_bootstrap"),
    )
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        validation_alias=AliasChoices("DATABASE_URL", "SN51_DATABASE_URL", "database_url"),
    )
    consumer_group: str | None = None  # default: sn51-<service>
    topic_prefix: str = ""  # prepended to every topic name (tests, several systems on one broker)
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    # At most this many messages per poll, processed in one PostgreSQL transaction. A poll returns what is
    # there, so batches are this large only when catching up, where they pay (billing bench: 2000 against 500,
    # +22 % end to end: fewer round trips, commits and offset commits).
    batch_size: int = 2_000
    # A poll is decided and stored in runs of at most this many message bytes (an epoch split of 200 kB derives
    # a thousand events, a rental one): batches of even cost, and a short last transaction.
    batch_bytes: int = 2 * 1024 * 1024
    # Decided batches that may wait for the writer while it stores (`consumer.py`): the core goes on deciding
    # while PostgreSQL writes, and the writer stores every waiting batch in its next transaction.
    decided_ahead: int = 2
    # How long a thread waiting for the GIL waits at most (`sys.setswitchinterval`; Python's default 5 ms): the
    # writer's thread (`writer.py`) needs it after each reply of PostgreSQL, while the core folds on the other.
    gil_switch_seconds: float = 0.0005
    poll_timeout_ms: int = 200
    # When a poll finds nothing, at most this often: a full collection, frozen objects included (`collector.py`)
    full_collection_seconds: float = 600.0
    max_partition_fetch_bytes: int = 8 * 1024 * 1024  # per partition and fetch
    fetch_max_wait_ms: int = 50  # how long the broker may hold a fetch that finds nothing new
    relay_batch: int = 1_000
    relay_idle_seconds: float = 0.5  # the relay polls the outbox at least this often
    topic_partitions: int = 1  # partitions of topics the runtime creates (1: live order = file order)
    api_enabled: bool = True
    api_host: str = "127.0.0.1"
    api_port: int | None = None  # default: the ServiceSpec's port
    log_level: str = "INFO"
    pool_size: int = 6  # the consumer holds one connection and the relay one; the read API and tasks share the rest
    # The service's event loop: uvloop where installed (`sn51.service.run_loop` says why), or asyncio's own.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @property
    def group(self) -> str:
        return self.consumer_group or f"sn51-{self.service}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
