"""``python -m flows.cli`` runs ``rga``."""

import sys

from flows.cli import main

sys.exit(main())
