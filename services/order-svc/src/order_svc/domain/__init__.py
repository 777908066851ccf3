"""Pure order rules: the state machine and what each transition means."""
