"""The use cases of order-svc: one function per use case, called by HTTP routes and by
event handlers alike, each inside the caller's unit of work."""
