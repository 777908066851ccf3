"""Small, dependency-free edits of PostgreSQL URLs.

Services receive the *server* URL and a separate database name (they create their database
themselves), while the launcher needs the same server with the ``postgres`` maintenance
database for probing and dropping.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432"


def server_url(url: str) -> str:
    """``url`` with any database name removed (query options are kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def host_port(url: str) -> tuple[str, int]:
    """Host and port of the server, with libpq's defaults filled in."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def redacted(url: str) -> str:
    """``url`` safe to print: a password, if any, is replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
