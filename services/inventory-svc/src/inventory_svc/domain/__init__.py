"""Pure inventory rules: how an order's lines are allocated to warehouses."""
