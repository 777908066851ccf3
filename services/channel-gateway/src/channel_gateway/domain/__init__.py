"""Pure gateway rules: signatures and the mapping of channel orders to canonical orders."""
