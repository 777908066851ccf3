"""Stand-ins for outside services the OMS calls (run by tests and, optionally, the stack)."""
