"""``python -m oms_devstack``."""

from oms_devstack.cli import main

raise SystemExit(main())
