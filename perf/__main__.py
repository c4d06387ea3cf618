"""``python -m perf``: see :func:`perf.main`."""

from perf import main

raise SystemExit(main())
