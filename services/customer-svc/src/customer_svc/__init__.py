"""customer-svc: resolves each channel identity to one customer id per person."""
