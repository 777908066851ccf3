"""Shared edges of the OMS services (settings, database, HTTP, logs, runtime)."""
