"""``python -m molpred.cli``."""

import sys

from molpred.cli import main

sys.exit(main())
