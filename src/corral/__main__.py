"""``python -m corral``: the command line."""

from corral.cli import main

raise SystemExit(main())
