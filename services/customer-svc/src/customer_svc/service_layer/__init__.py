"""Use cases of customer-svc that run set-based over a consumer batch."""
