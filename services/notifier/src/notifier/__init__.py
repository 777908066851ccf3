"""notifier: records every OMS event once and raises alerts for people from them."""
