"""`python -m kbshell.backend`: `kube-bind-backend`, as the chart's container runs it (the image's
entrypoint is the konnector; its venv's console scripts name a build-stage interpreter)."""

import sys

from kbshell.backend.main import main

if __name__ == "__main__":  # importing the module (e.g. to list its classes) runs nothing
    sys.exit(main())
