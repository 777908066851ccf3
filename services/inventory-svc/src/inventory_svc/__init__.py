"""inventory-svc: the central stock pool (reserve at payment, release, deduct at ship)."""
