"""`python -m kbshell.bind`: the `kubectl-bind` console script."""

import sys

from kbshell.bind import cli

sys.exit(cli())
