"""`python -m kbshell.bind`: the `kubectl-bind` console script."""

import sys

from kbshell.bind import cli

if __name__ == "__main__":  # not on import (tests import every module)
    sys.exit(cli())
