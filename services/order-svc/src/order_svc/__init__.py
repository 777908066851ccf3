"""order-svc: orders that advance themselves from receipt to delivery."""
