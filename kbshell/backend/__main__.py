"""`python -m kbshell.backend`: `kube-bind-backend`, as the chart's container runs it (the image's
entrypoint is the konnector; its venv's console scripts name a build-stage interpreter)."""

import sys

from kbshell.backend.main import main

sys.exit(main())
