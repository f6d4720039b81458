# The konnector-py image: the konnector (its entrypoint) and kube-bind-backend, which both charts
# run (charts/konnector and charts/backend default to ghcr.io/kube-bind/konnector-py with the
# charts' appVersion, the project's version, as the tag).
#
#   docker build -t ghcr.io/kube-bind/konnector-py:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/konnector-py:TAG --push .
#
# A venv is built by Debian 12's own python3.11 and copied into distroless/python3-debian12,
# which runs that same interpreter at the same path (/usr/bin/python3.11). So the venv's
# `python3` symlink resolves in the runtime image, and the dependencies with C extensions
# (PyYAML; aiohttp and pydantic-core, which the kubernetes client pulls in) are wheels for
# exactly the runtime's Python minor. The runtime image has no shell and no package manager; it
# runs as UID/GID 65532 (distroless "nonroot") and writes nothing outside /tmp, so it works with
# `readOnlyRootFilesystem: true` and an emptyDir at /tmp (the chart's settings). Bytecode is
# compiled at build time; nothing is compiled or cached at run time.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install --yes --no-install-recommends --no-install-suggests python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /venv
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY kbcore ./kbcore
COPY kbshell ./kbshell
COPY kbsim ./kbsim
# Runtime dependencies and the backend extra (the backend chart runs `python3 -m kbshell.backend`
# from this image), no test extras; pip itself is not shipped. The .pyc files are
# unchecked-hash based, so they stay valid whatever timestamps the copy into the runtime stage
# gives the sources. The last commands check the installed commands start (from /, so the
# sources in /src are not what gets imported).
RUN /venv/bin/pip install --upgrade pip \
 && /venv/bin/pip install --no-compile '.[backend]' \
 && /venv/bin/pip uninstall --yes pip setuptools \
 && /venv/bin/python3 -m compileall -q --invalidation-mode unchecked-hash /venv/lib/python3.11/site-packages \
 && cd / \
 && /venv/bin/python3 -m kbshell.main --help > /dev/null \
 && /venv/bin/python3 -m kbshell.backend --help > /dev/null \
 && /venv/bin/kbsim faults > /dev/null

FROM gcr.io/distroless/python3-debian12:nonroot
LABEL org.opencontainers.image.title="konnector-py" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="kube-bind konnector and backend: bind provider APIs into a cluster" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /venv /venv
ENV PYTHONPATH=/venv/lib/python3.11/site-packages \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
USER 65532:65532
# metrics (--metrics-bind-address) and health probes (--health-probe-bind-address)
EXPOSE 8085 8081
ENTRYPOINT ["/venv/bin/python3", "-m", "kbshell.main"]
