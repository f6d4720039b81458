"""The simulated world: clusters, a virtual clock, a deterministic scheduler, faults, a monitor.

Everything that happens is a task on one timeline ordered by (virtual time, sequence number), so
a run is a pure function of the scenario and the seed. Watch events travel from an API server to
a reflector as scheduled deliveries, which is where network faults act: they can be dropped (the
stream then breaks and the reflector resumes from its last resourceVersion, as a real one does),
delayed or duplicated. Requests can fail (5xx, 429, timeouts, with or without the write having
happened) and fresh reads can be stale. The konnector can crash at any point, including between
two actions of one plan, and restarts with no memory.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import Action
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.objects import ObjectRef
from kbcore.reads import Failed, Get, List, Read
from kbcore.runtime import cluster as clusterapi
from kbcore.runtime.requests import Request
from kbcore.service.reaper import ReapMode
from kbsim.apierrors import unreachable
from kbsim.apiserver import ADMIN, AfterWrite, APIServer, User
from kbsim.invariants import Monitor
from kbsim.issuer import SimIssuer, SimReaper
from kbsim.reflector import Reflector
from kbsim.serverapi import ServerAPI

START_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z: virtual time starts here in every run
WATCH_LATENCY = 0.005
WORK_LATENCY = 0.001
BOOKMARK_INTERVAL = 60.0
CONTROLLER_INTERVAL = 0.05
WATCH_TIMEOUT = 300.0
"""A real API server ends watches after a few minutes; reflectors then resume."""
RESTART_DELAY = 1.0
RECONNECT_DELAY = 0.1
KONNECTOR_USER = User("system:serviceaccount:kube-bind:konnector", ("system:masters",))

FAULT_KINDS = {
    "drop-watch-events": "events from this cluster's watches are lost for `duration`; then the "
    "streams break and reflectors resume from their last resourceVersion (or relist on 410)",
    "delay-watch-events": "events from this cluster's watches arrive `by` (default 2s) late "
    "for `duration`",
    "duplicate-watch-events": "every event from this cluster's watches arrives twice for "
    "`duration`",
    "stale-reads": "fresh GETs against this cluster return the state as of the fault's start "
    "for `duration`",
    "api-errors": "the konnector's requests to this cluster fail with `code` (default 500; 429 "
    "carries `retry_after`; 504 is a timeout) at `rate` (default 0.5) for `duration`; with "
    "`after_write: true` a failing write is carried out before the error is returned",
    "compact": "the cluster compacts its history and ends all watches, so reflectors that "
    "resume from an old resourceVersion get 410 Gone and relist",
    "expire-watches": "the cluster ends all watches (a server-side watch timeout)",
    "crash-konnector": "the konnector process dies (after `after_actions` more actions if "
    "given, so mid-plan) and restarts after `restart_after` (default 1s) with no memory",
}


def parse_duration(value: Any) -> float:
    """`5s`, `100ms`, `2m`, `1h` or a number of seconds; never negative, NaN or infinite."""
    seconds = _duration_seconds(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {value!r} (a duration is finite and not negative)")
    return seconds


def _duration_seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a duration: {value!r}")
    text = value.strip()
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(suffix):
            number = text[: -len(suffix)]
            try:
                return float(number) * factor
            except ValueError:
                break
    raise ValueError(f"not a duration: {value!r} (use e.g. 5s, 100ms, 2m)")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_duration(value: Any) -> str:
    try:
        parse_duration(value)
    except ValueError as err:
        return str(err)
    return ""


def _check_rate(value: Any) -> str:
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:  # NaN fails both comparisons
        return f"not a probability: {value!r} (a number from 0 to 1)"
    return ""


def _check_code(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or not 400 <= value <= 599:
        return f"not an HTTP error status: {value!r} (400 to 599)"
    return ""


def _check_seconds(value: Any) -> str:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        return f"not a number of seconds: {value!r} (finite, not negative)"
    return ""


def _check_count(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return f"not a count: {value!r} (a whole number, not negative)"
    return ""


def _check_bool(value: Any) -> str:
    return "" if isinstance(value, bool) else f"not true or false: {value!r}"


FaultParam = tuple[str, Callable[[Any], str]]
_DURATION: FaultParam = ("a duration (5s, 100ms, 2m, or seconds), default 5s", _check_duration)
FAULT_PARAMS: dict[str, dict[str, FaultParam]] = {
    "drop-watch-events": {"duration": _DURATION},
    "delay-watch-events": {
        "duration": _DURATION,
        "by": ("a duration, default 2s", _check_duration),
    },
    "duplicate-watch-events": {"duration": _DURATION},
    "stale-reads": {"duration": _DURATION},
    "api-errors": {
        "duration": _DURATION,
        "code": ("an HTTP error status (400-599), default 500", _check_code),
        "rate": ("a probability from 0 to 1, default 0.5", _check_rate),
        "retry_after": ("seconds (a number >= 0), sent with a 429", _check_seconds),
        "after_write": ("true or false, default false", _check_bool),
    },
    "compact": {},
    "expire-watches": {},
    "crash-konnector": {
        "after_actions": ("a count of actions (>= 0); default: crash at once", _check_count),
        "restart_after": ("a duration, default 1s", _check_duration),
    },
}
"""Each fault kind's parameters besides `kind` and (for all but crash-konnector) `cluster`:
what each is, and its check. `kbsim faults` prints them; `check_fault` enforces them."""


def check_fault(fault: Mapping[str, Any], clusters: Collection[str]) -> str:
    """Why the fault (`kind`, `cluster` and its parameters) cannot be injected into a world
    of `clusters`, or "" when it can."""
    kind = fault.get("kind")
    if not isinstance(kind, str) or kind not in FAULT_PARAMS:
        return f"fault kind must be one of {', '.join(FAULT_PARAMS)} (got {kind!r})"
    params = FAULT_PARAMS[kind]
    allowed = {"kind", *params} | ({"cluster"} if kind != "crash-konnector" else set())
    unknown = sorted(str(k) for k in fault if k not in allowed)
    if unknown:
        return (
            f"fault {kind}: unknown parameter(s) {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed - {'kind'})) or 'none'}"
        )
    if kind != "crash-konnector" and fault.get("cluster") not in clusters:
        return f"fault {kind} needs cluster: one of {sorted(clusters)}"
    for name, (_, check) in params.items():
        if name in fault:
            problem = check(fault[name])
            if problem:
                return f"fault {kind} {name}: {problem}"
    return ""


@attrs.define
class Fault:
    kind: str
    cluster: str
    start: float
    end: float
    params: dict[str, Any]
    rv: str = ""


@attrs.define
class Stream:
    """A reflector's watch as seen by the network: events in flight, in order."""

    cluster: str
    reflector: Reflector
    # Watch events, Secrets' included: kept out of the repr.
    inflight: deque[tuple[float, dict[str, Any]]] = attrs.field(factory=deque, repr=False)
    broken: bool = False
    retry_at: float = 0.0


class World:
    def __init__(self, clusters: list[str], *, seed: int = 0) -> None:
        self.seed = seed
        self.now = START_TIME
        self.rng = random.Random(seed)
        self.clusters: dict[str, APIServer] = {}
        for i, name in enumerate(clusters):
            self.clusters[name] = APIServer(
                name,
                clock=lambda: self.now,
                seed=seed * 1000 + i,
            )
        self.konnector_user = KONNECTOR_USER
        self._tasks: list[tuple[float, int, str, Callable[[], None]]] = []
        self._seq = 0
        self.streams: list[Stream] = []
        self._relisting: set[int] = set()
        """Reflectors (by id) whose relist failed and is scheduled again."""
        self.faults: list[Fault] = []
        self.issuers: list[SimIssuer] = []
        """Providers' issuers answering tenants' namespace claims (`start_issuer`)."""
        self.konnector: Any = None
        self.other_konnectors: list[Any] = []
        """Konnectors of further consumer clusters sharing the providers (`add_konnector`):
        run like the first, but crash faults and the monitor's judgement are the first's."""
        self.konnector_factory: Callable[[], Any] | None = None
        self.restart_at: float | None = None
        self.crash_after: int | None = None
        self.actor = "user"
        self.actions: Counter[str] = Counter()
        self.writes: Counter[tuple[str, str]] = Counter()
        """Write requests the konnector sent, by (cluster, `<resource>.<group>`)."""
        self.requests = 0
        self.logs: list[str] = []
        self.plans: list[tuple[float, Any, Any]] = []
        self.record_plans = False
        self.monitor = Monitor(self)
        for name, server in self.clusters.items():
            server.add_write_observer(functools.partial(self.monitor.on_write, name))
            server.add_request_hook(functools.partial(self._request_fault, name))
        self._schedule(BOOKMARK_INTERVAL, "bookmarks", self._bookmarks)
        self._schedule(WATCH_TIMEOUT, "watch-timeout", self._watch_timeout)

    # -- logging and records --------------------------------------------------------------
    def log(self, line: str) -> None:
        self.logs.append(f"{self.now - START_TIME:10.3f} {line}")

    def record_plan(self, item: Any, plan: Any) -> None:
        if self.record_plans:
            self.plans.append((self.now, item, plan))

    # -- scheduling --------------------------------------------------------------------------
    def schedule(self, delay: float, name: str, fn: Callable[[], None]) -> None:
        """Run `fn` after `delay` virtual seconds."""
        self._schedule(delay, name, fn)

    def _schedule(self, delay: float, name: str, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._tasks, (self.now + delay, self._seq, name, fn))

    def _bookmarks(self) -> None:
        for server in self.clusters.values():
            server.emit_bookmarks()
        self._schedule(BOOKMARK_INTERVAL, "bookmarks", self._bookmarks)

    def _watch_timeout(self) -> None:
        for server in self.clusters.values():
            server.expire_watches()
        self._schedule(WATCH_TIMEOUT, "watch-timeout", self._watch_timeout)

    # -- konnector lifecycle ------------------------------------------------------------------
    def start_konnector(self, factory: Callable[[], Any]) -> None:
        self.konnector_factory = factory
        self._boot()

    def _boot(self) -> None:
        assert self.konnector_factory is not None
        self.restart_at = None
        self.konnector = self.konnector_factory()
        self.konnector.start()
        self._start_unsynced()

    def _start_unsynced(self) -> None:
        for s in list(self.streams):
            if s.reflector.watch is None and not s.reflector.synced:
                self.start_reflector(s.reflector)

    def add_konnector(self, factory: Callable[[], Any]) -> None:
        """Start the konnector of another consumer cluster (several tenants of one provider)."""
        k = factory()
        k.start()
        self.other_konnectors.append(k)
        self._start_unsynced()

    def _konnectors(self) -> list[Any]:
        return [k for k in (self.konnector, *self.other_konnectors) if k is not None]

    def crash_konnector(self) -> None:
        if self.konnector is None:
            return
        self.log("konnector crashed")
        self.konnector.stop()
        self.konnector = None
        self.crash_after = None
        delay = self._crash_restart
        self.restart_at = self.now + delay

    _crash_restart = RESTART_DELAY

    def attach(self, cluster: str, reflector: Reflector) -> None:
        self.streams.append(Stream(cluster, reflector))

    def detach(self, reflector: Reflector) -> None:
        self.streams = [s for s in self.streams if s.reflector is not reflector]

    def start_reflector(self, reflector: Reflector) -> None:
        """List and watch; on failure retry after a short backoff (as a reflector does)."""
        if reflector.stopped:
            return
        try:
            self.as_konnector(reflector.relist)
            self._relisting.discard(id(reflector))
        except ApiError as err:
            self.log(f"list {reflector.gvr} failed: {err}; retrying")
            self._relisting.add(id(reflector))
            self._schedule(1.0, "relist", lambda: self.start_reflector(reflector))

    def start_issuer(self, cluster: str) -> None:
        """Run a provider-side issuer on `cluster` (`kbsim.issuer`), as a controller."""
        self.issuers.append(SimIssuer(self.clusters[cluster], lambda: self.now))

    def start_reaper(
        self, cluster: str, mode: ReapMode, ttl_seconds: float, interval_seconds: float = 60.0
    ) -> SimReaper:
        """Run the reaper on `cluster` (`kbsim.issuer.SimReaper`): a pass every
        `interval_seconds` of virtual time, the first one now. Periodic housekeeping: it never
        keeps `settle` from returning."""
        reaper = SimReaper(self.clusters[cluster], lambda: self.now, mode, ttl_seconds)

        def run() -> None:
            self._acting("reaper", reaper.tick)
            self._schedule(interval_seconds, "reaper", run)

        self._schedule(0.0, "reaper", run)
        return reaper

    def _issuer_work(self) -> bool:
        return any(i.pending_work() for i in self.issuers)

    def as_konnector(self, fn: Callable[[], Any]) -> Any:
        return self._acting("konnector", fn)

    def _acting(self, actor: str, fn: Callable[[], Any]) -> Any:
        """Run `fn` as `actor` (request faults hit only the konnector's requests)."""
        previous, self.actor = self.actor, actor
        try:
            return fn()
        finally:
            self.actor = previous

    # -- requests --------------------------------------------------------------------------
    def resolve_credentials(self, creds: Credentials) -> tuple[str, User] | None:
        """The simulated cluster and user a kubeconfig's credentials reach, or None.

        A server host `<name>.kbsim` addresses cluster `<name>`. A token that cluster's token
        controller minted is its ServiceAccount while the ServiceAccount and the token Secret
        exist (`APIServer.authenticate`; afterwards the server refuses it with 401); any other
        token names the user (`admin` or none: cluster-admin; anything else: authorized by that
        cluster's RBAC)."""
        host = creds.host
        cluster = host[: -len(".kbsim")]
        if not host.endswith(".kbsim") or cluster not in self.clusters:
            return None
        token = creds.token
        if token in ("", "admin"):
            return cluster, ADMIN
        return cluster, self.clusters[cluster].authenticate(token) or User(token, ())

    def read(self, target: tuple[str, User] | None, read: Read) -> Any:
        """Answer one kernel read for the konnector: the result, or Failed(error)."""
        if target is None:
            return Failed(unreachable())
        cluster, user = target
        server = self.clusters[cluster]
        stale = self._active("stale-reads", cluster)

        def call() -> Any:
            match read:
                case Get(gvr=gvr, key=key) if stale is not None:
                    return server.get_at(gvr, key, stale.rv)
                case List(gvr=gvr, namespace=ns, label_selector="") if stale is not None:
                    return server.list_at(gvr, ns, stale.rv)[0]
            return clusterapi.ask(ServerAPI(server, user), read)

        self.requests += 1
        return clusterapi.answered(lambda: self.as_konnector(call))

    def read_fresh(self, cluster: str, ref: ObjectRef, user: User) -> o.Obj | None:
        """An uncached GET, subject to stale-read faults; None when not found."""
        result = self.read((cluster, user), Get(ref.cluster, ref.gvr, ref.key))
        if isinstance(result, Failed):
            raise result.error
        return result if isinstance(result, dict) else None

    def perform(self, request: Request, server: APIServer, user: User, action: Action) -> None:
        """Carry out one request for the konnector, counting it and honouring crash faults."""
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crash_konnector()
                raise ApiError(503, "ServiceUnavailable", "konnector crashed")
            self.crash_after -= 1
        self.actions[type(action).__name__] += 1
        self.requests += 1
        self.monitor.on_request(server.name, request)
        self.writes[(server.name, request.gvr.group_resource)] += 1
        api = ServerAPI(server, user)
        self.as_konnector(lambda: clusterapi.perform(api, request))

    def _request_fault(self, cluster: str, verb: str, gvr: Any, key: Any, user: Any) -> Any:
        if self.actor != "konnector":
            return None
        fault = self._active("api-errors", cluster)
        if fault is None or self.rng.random() >= float(fault.params.get("rate", 0.5)):
            return None
        code = int(fault.params.get("code", 500))
        reason = {429: "TooManyRequests", 504: "Timeout", 503: "ServiceUnavailable"}.get(
            code, "InternalError"
        )
        retry = fault.params.get("retry_after")
        err = ApiError(
            code,
            reason,
            f"injected {code} by kbsim",
            retry_after=float(retry) if retry is not None else None,
        )
        if fault.params.get("after_write") and verb in ("create", "update", "patch", "delete"):
            return AfterWrite(err)
        return err

    # -- faults -------------------------------------------------------------------------------
    def stale_snapshot(self, cluster: str) -> str | None:
        """The resourceVersion fresh reads of `cluster` are served at now (stale-reads), if any."""
        fault = self._active("stale-reads", cluster)
        return fault.rv if fault is not None else None

    def _active(self, kind: str, cluster: str) -> Fault | None:
        for f in self.faults:
            if f.kind == kind and f.cluster == cluster and f.start <= self.now < f.end:
                return f
        return None

    def inject(self, kind: str, params: dict[str, Any]) -> None:
        problem = check_fault({**params, "kind": kind}, self.clusters)
        if problem:
            raise ValueError(problem)
        cluster = str(params.get("cluster", ""))
        self.actions[f"fault:{kind}"] += 1
        if kind == "crash-konnector":
            self._crash_restart = parse_duration(params.get("restart_after", RESTART_DELAY))
            if "after_actions" in params:
                self.crash_after = int(params["after_actions"])
            else:
                self.crash_konnector()
            return
        if kind == "compact":
            self.clusters[cluster].compact()
            self.clusters[cluster].expire_watches()
            return
        if kind == "expire-watches":
            self.clusters[cluster].expire_watches()
            return
        duration = parse_duration(params.get("duration", "5s"))
        fault = Fault(kind, cluster, self.now, self.now + duration, dict(params))
        fault.rv = self.clusters[cluster].current_resource_version()
        self.faults.append(fault)
        if kind == "drop-watch-events":
            self._schedule(duration, "drop-end", lambda: self._break_streams(cluster))

    def _break_streams(self, cluster: str) -> None:
        for s in self.streams:
            if s.cluster == cluster:
                self._break(s)

    def _break(self, s: Stream) -> None:
        """The stream ended: reconnect shortly, or once the network is back."""
        if s.broken:
            return
        s.broken = True
        drop = self._active("drop-watch-events", s.cluster)
        s.retry_at = drop.end if drop is not None else self.now + RECONNECT_DELAY

    # -- the network ------------------------------------------------------------------------
    def _pump(self) -> None:
        """Move events from API server watches into flight, applying network faults."""
        for s in list(self.streams):
            w = s.reflector.watch
            if w is None:
                continue
            events = w.drain()
            if s.broken:
                continue  # the connection is gone: what the server still sends is lost
            drop = self._active("drop-watch-events", s.cluster)
            if drop is not None and events:
                # Lost data means a lost connection: nothing later on this stream may arrive
                # (a reflector would otherwise skip past what it never saw). It reconnects
                # from its last resourceVersion once the network is back.
                w.stop()
                self._break(s)
                continue
            delay = self._active("delay-watch-events", s.cluster)
            dup = self._active("duplicate-watch-events", s.cluster)
            for ev in events:
                due = self.now + WATCH_LATENCY
                if delay is not None:
                    due += parse_duration(delay.params.get("by", "2s"))
                if s.inflight and s.inflight[-1][0] > due:
                    due = s.inflight[-1][0]  # a stream stays ordered
                s.inflight.append((due, ev))
                if dup is not None:
                    s.inflight.append((due, ev))
            if getattr(w, "closed", False) and not s.inflight:
                self._break(s)

    def _deliver_due(self) -> bool:
        progressed = False
        for s in list(self.streams):
            while s.inflight and s.inflight[0][0] <= self.now:
                _, ev = s.inflight.popleft()
                progressed = True
                try:
                    self.as_konnector(functools.partial(s.reflector.deliver, ev))
                except ApiError as err:
                    self.log(f"watch {s.reflector.gvr}: {err}; relisting")
                    self.start_reflector(s.reflector)
            if s.broken and not s.inflight and s.retry_at <= self.now and s in self.streams:
                if self._active("drop-watch-events", s.cluster) is not None:
                    s.broken = False
                    self._break(s)
                    continue
                s.broken = False
                progressed = True
                try:
                    self.as_konnector(s.reflector.rewatch)
                except ApiError as err:
                    self.log(f"rewatch {s.reflector.gvr}: {err}; relisting")
                    self.start_reflector(s.reflector)
        return progressed

    # -- the loop -------------------------------------------------------------------------
    def _next_time(self) -> float | None:
        times = [self._tasks[0][0]] if self._tasks else []
        times += [s.inflight[0][0] for s in self.streams if s.inflight]
        times += [max(s.retry_at, self.now) for s in self.streams if s.broken and not s.inflight]
        if self.restart_at is not None:
            times.append(self.restart_at)
        times += [f.end for f in self.faults if f.end > self.now]
        if any(server.pending_work() for server in self.clusters.values()) or self._issuer_work():
            times.append(self.now + CONTROLLER_INTERVAL)
        for k in self._konnectors():
            if k.queue.ready(self.now):
                times.append(self.now + WORK_LATENCY)
            due = k.queue.next_due()
            if due is not None:
                times.append(max(due, self.now))
        return min(times) if times else None

    def step(self, until: float) -> bool:
        """Run everything due at the next instant not after `until`; False if nothing is."""
        self._pump()
        t = self._next_time()
        if t is None or t > until:
            return False
        self.now = max(self.now, t)
        if self.restart_at is not None and self.restart_at <= self.now:
            self._boot()
        while self._tasks and self._tasks[0][0] <= self.now:
            _, _, _, fn = heapq.heappop(self._tasks)
            fn()
        for server in self.clusters.values():
            if server.pending_work():
                server.tick()
        for issuer in self.issuers:
            if issuer.pending_work():
                self._acting("issuer", issuer.tick)
        self._pump()
        self._deliver_due()
        for k in self._konnectors():
            if k.queue.ready(self.now):
                k.process_one()
        self._pump()
        return True

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.step(end):
            pass
        self.now = max(self.now, end)

    def busy(self) -> bool:
        """Is anything other than periodic housekeeping still to happen?"""
        self._pump()
        if any(s.inflight or s.broken for s in self.streams):
            return True
        if any(
            not s.reflector.stopped
            and (not s.reflector.synced or id(s.reflector) in self._relisting)
            for s in self.streams
        ):
            return True  # a list is being retried: the konnector's cache is not current
        if self.restart_at is not None:
            return True
        if any(server.pending_work() for server in self.clusters.values()) or self._issuer_work():
            return True
        if any(f.end > self.now for f in self.faults):
            return True
        return any(
            k.queue.pending() > 0 or k.queue.next_due() is not None for k in self._konnectors()
        )

    def settle(self, timeout: float) -> bool:
        """Run until nothing is pending; False if `timeout` virtual seconds pass first."""
        end = self.now + timeout
        while self.busy():
            if not self.step(end):
                if self.now >= end or self._next_time() is None:
                    break
                self.now = end
        return not self.busy()

    # -- user actions ------------------------------------------------------------------------
    def user_call(self, fn: Callable[[], Any]) -> Any:
        return self._acting("user", fn)
