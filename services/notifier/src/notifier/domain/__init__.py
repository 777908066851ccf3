"""Pure notifier rules: which events call for an alert, and what it says."""
