"""The gateway's use cases that span requests (webhook group commits)."""
