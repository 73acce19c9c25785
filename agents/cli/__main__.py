"""``python -m agents.cli``: the same as the ``mesh`` console script."""

import sys

from agents.cli import main

sys.exit(main())
