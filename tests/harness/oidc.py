"""Real provider-side services for tests: a Dex OIDC provider and a Redis server, on 127.0.0.1.

The provider-side service layer logs users in through OIDC and keeps sessions in Redis; its
tests run the real servers. Dex is built from the Go module proxy by ``hack/dex/build.sh``
(see ``hack/dex/README.md``); ``redis-server`` comes from Debian's packages (``make redis``).

Each server is one :class:`~tests.harness.clusters.Process` (its own session, killed with its
children, stopped at exit and when the starting thread dies) on a free port, with its files in
a directory of its own::

    <dir>/dex.yaml, <dir>/dex.log          Dex: generated config, in-memory storage
    <dir>/redis.log, <dir>/data/           redis-server: no RDB snapshots, no AOF

Dex's users all have the password :data:`PASSWORD`. Its static passwords carry groups (the
``groups`` claim, with the ``groups`` scope). A :class:`Client` without a secret is a public
client (a CLI or browser app that proves itself with PKCE alone). ``skip_approval=False``
keeps Dex's consent page ("Grant Access") in the flow, for the tests that want to see it.
"""

from __future__ import annotations

import abc
import contextlib
import html.parser
import http.server
import json
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self, TypeVar

import attrs

from tests.harness.clusters import (
    LOG_TAIL_LINES,
    REPO_ROOT,
    HarnessError,
    Process,
    free_ports,
    http_ok,
    retry_port_races,
    run_build_script,
)

DEX_BUILD_SCRIPT = REPO_ROOT / "hack" / "dex" / "build.sh"
# Dex starts in well under a second; a loaded 2-core machine may take several.
DEFAULT_TIMEOUT = 60.0

PASSWORD = "password"
# bcrypt of PASSWORD at cost 10, the lowest Dex accepts (it refuses cheaper hashes at login).
PASSWORD_HASH = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"


class ServiceError(HarnessError):
    """Dex or redis-server could not be built or started; the message carries the log tail."""


@attrs.frozen
class User:
    """A static Dex user; logs in with :data:`PASSWORD`."""

    email: str
    username: str
    groups: tuple[str, ...] = ()

    @property
    def user_id(self) -> str:
        """The ``sub`` Dex derives from it (with the connector id) is stable across restarts."""
        return f"{self.username}-id"


@attrs.frozen
class Client:
    """A static OAuth2 client. No secret: a public client, which must use PKCE."""

    id: str
    redirect_uris: tuple[str, ...]
    secret: str | None = None
    name: str = ""

    @property
    def public(self) -> bool:
        return self.secret is None


ALICE = User("alice@example.com", "alice", ("kube-bind-admins", "developers"))
BOB = User("bob@example.com", "bob", ("developers",))
DEFAULT_USERS = (ALICE, BOB)


def build_dex() -> Path:
    """Run hack/dex/build.sh (a no-op when built) and return the directory holding ``dex``."""
    return run_build_script(DEX_BUILD_SCRIPT, ("dex",), "Dex", ServiceError)


def _wait_ready(process: Process, ready: Callable[[], bool], timeout: float) -> None:
    """Poll ``ready`` until it holds; fail at once (with the log) if the process exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not process.alive():
            raise ServiceError(f"{process.describe_exit()} during start-up\n{process.tail()}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{process.name} not ready after {timeout:.0f}s\n{process.tail()}")
        time.sleep(0.1)


class Service(abc.ABC):
    """One server process: start it and wait until it answers, stop it, read its log."""

    process: Process
    port: int

    @abc.abstractmethod
    def ready(self) -> bool:
        """Does the server answer (Dex: discovery; Redis: PING)?"""

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            self.process.start()
        except FileNotFoundError as err:
            raise ServiceError(f"{self.process.name}: {err}") from err
        try:
            _wait_ready(self.process, self.ready, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.stop()

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        proc = self.process
        return (
            f"----- {proc.name} ({proc.describe_exit()}), last {lines} lines of {proc.log_path}\n"
            + proc.tail(lines)
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- Dex


class Dex(Service):
    """A Dex server: ``issuer``, ``discovery_url``; users log in at its local password form."""

    def __init__(
        self,
        directory: Path,
        bin_dir: Path,
        clients: Sequence[Client],
        users: Sequence[User] = DEFAULT_USERS,
        *,
        skip_approval: bool = True,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.url}/dex"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.clients = tuple(clients)
        self.users = tuple(users)
        self.config_path = self.dir / "dex.yaml"
        # JSON is YAML: no quoting surprises for the bcrypt hash's "$".
        self.config_path.write_text(json.dumps(self.config(skip_approval), indent=2))
        argv = [str(bin_dir / "dex"), "serve", str(self.config_path)]
        self.process = Process("dex", argv, self.dir / "dex.log", self.dir)

    def config(self, skip_approval: bool) -> dict[str, object]:
        """Dex's configuration: memory storage, the password database and the static clients."""
        return {
            "issuer": self.issuer,
            "storage": {"type": "memory"},
            "web": {"http": f"127.0.0.1:{self.port}"},
            "logger": {"level": "debug", "format": "json"},
            "oauth2": {"skipApprovalScreen": skip_approval},
            "enablePasswordDB": True,
            "staticPasswords": [
                {
                    "email": u.email,
                    "username": u.username,
                    "userID": u.user_id,
                    "hash": PASSWORD_HASH,
                    "groups": list(u.groups),
                }
                for u in self.users
            ],
            "staticClients": [
                {
                    "id": c.id,
                    "name": c.name or c.id,
                    "redirectURIs": list(c.redirect_uris),
                    **({"public": True} if c.secret is None else {"secret": c.secret}),
                }
                for c in self.clients
            ],
        }

    def endpoint(self, path: str) -> str:
        """An absolute URL below the issuer, e.g. ``endpoint("/token")``."""
        return self.issuer + path

    def ready(self) -> bool:
        """Serving: its discovery document answers."""
        return http_ok(self.discovery_url)


S = TypeVar("S", bound=Service)


def _start_fresh(make: Callable[[Path], S], directory: Path, stem: str) -> S:
    """``make(dir)`` started, in a new subdirectory of ``directory`` for each port-race retry."""
    attempts = iter(range(1, 1_000))

    def start() -> S:
        service = make(directory / f"{stem}-{next(attempts)}")
        service.start()
        return service

    return retry_port_races(start)


def start_dex(
    directory: Path,
    clients: Sequence[Client],
    users: Sequence[User] = DEFAULT_USERS,
    *,
    skip_approval: bool = True,
    bin_dir: Path | None = None,
) -> Dex:
    """A started :class:`Dex` in a new subdirectory of ``directory`` (one per attempt)."""
    binaries = bin_dir or build_dex()
    return _start_fresh(
        lambda d: Dex(d, binaries, clients, users, skip_approval=skip_approval), directory, "dex"
    )


# --------------------------------------------------------------------------- Redis


class RedisServer(Service):
    """redis-server on a free 127.0.0.1 port without persistence; ``url`` for redis clients."""

    def __init__(self, directory: Path, binary: str = "redis-server") -> None:
        self.dir = directory
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.port,) = free_ports(1)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            # A test store: nothing written to disk, so nothing survives or piles up.
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir / "data"),
            "--daemonize", "no",
            "--logfile", "",  # stdout, which Process sends to redis.log
        ]  # fmt: skip
        self.process = Process("redis-server", argv, self.dir / "redis.log", self.dir)

    def ready(self) -> bool:
        """Serving: it answers PING."""
        import redis  # imported lazily: only tests that use Redis need the client

        with contextlib.suppress(redis.RedisError), redis.Redis.from_url(self.url) as client:
            return bool(client.ping())
        return False


def start_redis(directory: Path) -> RedisServer:
    """A started :class:`RedisServer` in a new subdirectory of ``directory``."""
    if shutil.which("redis-server") is None:
        raise ServiceError("redis-server is not on PATH; `make redis` installs it (Debian)")
    return _start_fresh(RedisServer, directory, "redis")


# --------------------------------------------------------------------------- the client's side


class RedirectCatcher:
    """A 127.0.0.1 listener standing in for an OAuth2 client's redirect URI.

    It answers every GET with 200 and records its query (``received``), so a test that follows
    Dex's redirects ends here and can tell whether Dex sent a code, and which.
    """

    def __init__(self, path: str = "/callback") -> None:
        self.received: list[dict[str, str]] = []
        catcher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                catcher.received.append(dict(urllib.parse.parse_qsl(url.query)))
                self.send_response(200 if url.path == path else 404)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"redirect received\n")

            def log_message(self, format: str, *args: object) -> None:
                pass  # the tests read `received`, not stderr

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RedirectCatcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@attrs.frozen
class HtmlForm:
    """A <form> of a page: where it posts to (relative to the page) and its named inputs."""

    action: str
    method: str
    fields: dict[str, str]
    """Name to value of each <input>; a value-less input (a text box) maps to ""."""


class _FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[HtmlForm] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(HtmlForm(a.get("action", ""), a.get("method", "get").lower(), {}))
        elif tag == "input" and self.forms and "name" in a:
            self.forms[-1].fields[a["name"]] = a.get("value", "")


def html_forms(page: str) -> list[HtmlForm]:
    """The forms of an HTML page, in document order (the parser unescapes attribute values)."""
    parser = _FormParser()
    parser.feed(page)
    parser.close()
    return parser.forms
