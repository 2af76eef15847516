"""``python -m bench.peers``: see ``bench.peers.cli``."""

from bench.peers.cli import main

raise SystemExit(main())
