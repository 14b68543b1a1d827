"""``python -m okx_sync`` — the same commands as the ``okx-sync`` script."""

from okx_sync.cli import main

raise SystemExit(main())
