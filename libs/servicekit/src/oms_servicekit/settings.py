"""Settings every service reads from its environment, with defaults that work locally."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    #: The PostgreSQL server; the database name comes from ``db_name``.
    database_url: str = "postgresql://postgres@127.0.0.1:5432"
    db_name: str = "oms"
    #: Connections per service process: the pool plus as many overflow connections.
    db_pool_size: int = 5
    #: Test every pooled connection before use. Off by default: the test costs three round
    #: trips per transaction (begin, ping, rollback; a third of a webhook's), and without it
    #: the first statement on a connection the server dropped fails as a transient error,
    #: which the consumers retry and the API answers with a 503 a client retries, while
    #: the pool replaces every connection older than the failure.
    db_pool_pre_ping: bool = False
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = 4
    kafka_replication_factor: int = 1
    #: A consumer poll of fewer than 100 events, while a stream is flowing, waits this long
    #: once for more, so a steady stream is applied in fuller transactions (0 turns it off;
    #: it adds at most this much latency per hop, and never to a backlog, to the first
    #: events after a quiet spell or to an idle consumer).
    kafka_consumer_linger_ms: float = 20.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    #: How long start-up keeps waiting for the database and the broker.
    startup_timeout_s: float = 60.0
    #: Outbox relay shards (keys hashed into this many; one relay drains a shard at a time).
    outbox_shards: int = 4
    #: The largest serialized event a service writes and publishes (Kafka's own default
    #: limit is about 1 MB); a larger one is refused where it is built.
    outbox_max_event_bytes: int = 900_000
    #: How old the database figures of ``/metrics`` (outbox backlog, business gauges) may
    #: be before a scrape reads them again. Each read counts over growing tables; every
    #: scraper (Prometheus replicas, the board, a benchmark) would otherwise pay it on
    #: every scrape. Consumer lag and counters are always live. 0 reads on every scrape.
    metrics_db_max_age_s: float = 5.0
    #: How often a table that was never analyzed but has changed 1,000 rows or more is
    #: looked for, to take its first statistics (see ``oms_servicekit.young_tables``);
    #: 0 never looks.
    young_tables_check_s: float = 15.0

    def database_sqlalchemy_url(self) -> URL:
        return make_url(self.database_url).set(
            drivername="postgresql+asyncpg", database=self.db_name
        )

    def server_dsn(self, database: str = "postgres") -> str:
        """A plain libpq DSN to ``database`` on the same server (for creating databases)."""
        url = make_url(self.database_url).set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)
