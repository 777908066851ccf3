"""Use cases of inventory-svc that run set-based over a consumer batch."""
