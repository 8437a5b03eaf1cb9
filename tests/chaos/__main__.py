"""``python -m tests.chaos --seed N`` replays one schedule; ``--n N [--jobs J] [--out DIR]`` runs many."""

from __future__ import annotations

import sys

from tests.chaos.cli import main

if __name__ == "__main__":
    sys.exit(main())
