"""Scenarios: a YAML script of setup, user edits, faults, time and expectations, run in kbsim.

The format is a stable contract (other tests and tools write it): extend it, never change it.

    name: quickstart
    seed: 7                                   # optional; --seed overrides
    clusters: [provider, consumer]
    konnector: {cluster: consumer, namespace: kube-bind}
    setup:                                    # applied in order before the konnector starts
      - {cluster: provider, object: {...a full manifest...}}
      - {cluster: consumer, file: bundle.yaml}  # relative to the scenario; multi-document YAML
    steps:
      - {cluster: consumer, apply: {...}}     # also create, delete, patch, status (a /status write)
      - {fault: {kind: drop-watch-events, cluster: provider, duration: 5s}}
      - {advance: 10s}                        # move the virtual clock, running all that is due
      - {settle: {timeout: 60s}}              # run until nothing is pending; fails if not reached
      - {expect: {cluster: provider, object: {...ref...}, matches: {spec: {size: large}}}}
      - {expect: {cluster: provider, absent: {...ref...}}}
      - {expect: {cluster: consumer, object: {...ref...}, conditions: {Ready: "False/Pending"}}}

`conditions` maps a condition type in `status.conditions` to its status, or status/reason;
`api_conditions` does the same per bound API of a binding (`status.boundAPIs[].conditions`),
and `bound_apis` matches fields of a binding's `status.boundAPIs[]` entry by name:
      - {expect: {..., api_conditions: {widgets.example.org: {Ready: "False/ForeignCRD"}}}}
      - {expect: {..., bound_apis: {widgets.example.org: {conflictCount: 1}}}}

`condition_messages` maps a condition type to text its message must contain (a string, or a
list of strings that must all appear), and `no_copy` expects that kube-bind made no object at a
reference: it is absent, or exists without the label `core.kube-bind.io/managed: "true"` (a
real cluster's own `kube-root-ca.crt`, say, which kbsim does not create):
      - {expect: {..., condition_messages: {RelatedResources: "Secret kube-system/x"}}}
      - {expect: {cluster: consumer, no_copy: {...ref...}}}

`quiet` moves the virtual clock like `advance` and fails if meanwhile the konnector sent more
than `writes_at_most` write requests (default 0), counting only those to `cluster` and to
`resource` (`<plural>.<group>`, or `<plural>` for the core group) when given; it shows that the
konnector is not looping (retries of a refused write count too):
      - {quiet: {for: 120s, cluster: provider, resource: widgets.example.org, writes_at_most: 0}}

`apply` is a server-side apply by field manager `kubectl` with force (like `kubectl apply
--server-side --force-conflicts`); `create` is a POST; `patch` a JSON merge patch; `status` a
merge patch of the /status subresource; `delete` deletes by the manifest's namespace and name.
The konnector's cluster gets the core.kube-bind.io CRDs and the konnector namespace before setup,
as the Helm chart would install them.

Values too deep or too long to write out are built by two tags, anywhere a value goes:

      status: !nest {depth: 9999, leaf: done}        # {a: {a: ... {a: done}}}, 9999 maps deep
      status: !nest {depth: 420, key: level, leaf: 1} # the same with key `level`
      data: !nest {depth: 3, list: true, leaf: x}    # [[[x]]]
      spec: !nest {depth: 300, path: [properties, x], each: {type: object}, leaf: {type: string}}
                           # a schema 300 properties deep: {type: object, properties: {x: ...}}
      message: !repeat {text: "x", times: 3000000}   # a 3 MB string

A scenario file itself may nest at most `MAX_YAML_DEPTH` levels and expand (following its
anchors and aliases) to at most `MAX_YAML_VALUES` values; beyond either it is a scenario error
naming the line, never a crash or a "billion laughs" expansion.
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import yaml

from kbcore import diff, limits
from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import CRDS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.redaction import redacted_repr
from kbcore.schema import crdgen
from kbsim.apiserver import ADMIN
from kbsim.konnector import SimKonnector
from kbsim.world import START_TIME, World, check_fault, parse_duration

USER_WRITES = ("apply", "create", "delete", "patch", "status")
EXPECT_FORMS = ("object", "absent", "no_copy")
STEP_KINDS = (*USER_WRITES, "fault", "advance", "settle", "quiet", "expect")
USER_MANAGER = "kubectl"

MAX_YAML_DEPTH = 100
"""How deep a scenario file's YAML may nest. PyYAML builds a document by recursion, several
frames a level, so a file nested a few hundred levels deep would end in a RecursionError; deep
values are what `!nest` is for."""
MAX_YAML_VALUES = 1_000_000
"""How many values a scenario file may expand to once aliases are followed: a few aliases of
aliases ("billion laughs") expand exponentially, and every copy and walk of the result would."""
MAX_NEST_DEPTH = 100_000
"""The deepest `!nest` (ten times what an API server decodes: enough to test refusals)."""
MAX_REPEAT_CHARS = 64 * 1024 * 1024


class ScenarioError(ValueError):
    """A malformed scenario; the message names the file and line."""


@attrs.frozen
class Step:
    index: int
    line: int
    kind: str
    body: dict[str, Any] = attrs.field(repr=redacted_repr)  # may create a kubeconfig Secret

    def describe(self) -> str:
        b = self.body
        if self.kind in USER_WRITES:
            obj = b[self.kind]
            return f"{self.kind} {b['cluster']} {obj.get('kind', '?')} {_ref_text(obj)}"
        if self.kind == "fault":
            f = b["fault"]
            where = f" {f['cluster']}" if f.get("cluster") else ""
            return f"fault {f['kind']}{where}"
        if self.kind == "advance":
            return f"advance {b['advance']}"
        if self.kind == "settle":
            return f"settle (timeout {(b.get('settle') or {}).get('timeout', '60s')})"
        if self.kind == "quiet":
            q = b["quiet"]
            where = " ".join(str(q[k]) for k in ("cluster", "resource") if q.get(k))
            return f"quiet {q['for']}: at most {q.get('writes_at_most', 0)} writes {where}".strip()
        e = b["expect"]
        for form, tail in (("absent", " absent"), ("no_copy", " not a copy")):
            if form in e:
                ref = e[form]
                return f"expect {e['cluster']} {ref.get('kind', '?')} {_ref_text(ref)}{tail}"
        return f"expect {e['cluster']} {e['object'].get('kind', '?')} {_ref_text(e['object'])}"


def _ref_text(obj: dict[str, Any]) -> str:
    return str(o.key_of(obj))


@attrs.frozen
class Scenario:
    name: str
    path: Path
    seed: int
    clusters: tuple[str, ...]
    konnector_cluster: str
    konnector_namespace: str
    setup: tuple[tuple[int, str, dict[str, Any]], ...] = attrs.field(repr=redacted_repr)
    steps: tuple[Step, ...]


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """YAML with the value generators `!nest` and `!repeat`."""


def _generator_args(loader: _Loader, node: yaml.Node, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} takes a mapping", node.start_mark
        )
    args = loader.construct_mapping(node, deep=True)
    unknown = set(args) - allowed
    if unknown:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"{node.tag}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"it takes {', '.join(sorted(allowed))}",
            node.start_mark,
        )
    return {str(k): v for k, v in args.items()}  # all keys are names from `allowed` by now


def _count(args: dict[str, Any], key: str, most: int, node: yaml.Node) -> int:
    n = args.get(key)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= most:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag}: {key} must be an integer from 0 to {most}", node.start_mark
        )
    return n


def _nest(loader: _Loader, node: yaml.Node) -> Any:
    args = _generator_args(loader, node, {"depth", "key", "path", "each", "leaf", "list"})
    depth = _count(args, "depth", MAX_NEST_DEPTH, node)
    path = args.get("path", [args.get("key", "a")])
    each = args.get("each", {})
    if (
        not isinstance(path, list)
        or not path
        or not all(isinstance(k, str) for k in path)
        or not isinstance(each, dict)
    ):
        raise yaml.constructor.ConstructorError(
            None,
            None,
            "!nest: key is a string, path a non-empty list of strings, each a mapping",
            node.start_mark,
        )
    value = args.get("leaf")
    as_list = args.get("list") is True
    for _ in range(depth):
        if as_list:
            value = [value]
            continue
        for k in reversed(path[1:]):
            value = {k: value}
        value = {**o.deepcopy(each), path[0]: value}
    return value


def _repeat(loader: _Loader, node: yaml.Node) -> str:
    args = _generator_args(loader, node, {"text", "times"})
    text = args.get("text")
    if not isinstance(text, str) or not text:
        raise yaml.constructor.ConstructorError(
            None, None, "!repeat: text must be a non-empty string", node.start_mark
        )
    return text * _count(args, "times", MAX_REPEAT_CHARS // len(text), node)


_Loader.add_constructor("!nest", _nest)
_Loader.add_constructor("!repeat", _repeat)


class _ShapeError(yaml.MarkedYAMLError):
    """Valid YAML, but too deep or too large once expanded (see `_check_shape`)."""


def _check_shape(text: str) -> None:
    """Refuse YAML nested deeper than MAX_YAML_DEPTH or expanding (through aliases) to more
    than MAX_YAML_VALUES values, before PyYAML builds it. Reads the event stream, which PyYAML
    parses without recursion; an alias counts the values and depth of what it names."""
    open_nodes: list[list[Any]] = []  # per open mapping or sequence: [anchor, values, depth]
    named: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) of what it names
    total = 0

    def add(event: yaml.Event, values: int, depth: int) -> None:
        nonlocal total
        total += values
        # SafeLoader's pure-Python parser makes yaml.error.Mark; the stubs also allow libyaml's.
        mark = event.start_mark if isinstance(event.start_mark, yaml.error.Mark) else None
        if total > MAX_YAML_VALUES:
            raise _ShapeError(
                problem=f"expands to more than {MAX_YAML_VALUES} values through its aliases; "
                "write the values out or build them with !nest or !repeat",
                problem_mark=mark,
            )
        if len(open_nodes) + depth > MAX_YAML_DEPTH:
            raise _ShapeError(
                problem=f"nests more than {MAX_YAML_DEPTH} levels deep; build deep values "
                "with !nest",
                problem_mark=mark,
            )

    def into_parent(values: int, depth: int) -> None:
        if open_nodes:
            open_nodes[-1][1] += values
            open_nodes[-1][2] = max(open_nodes[-1][2], depth + 1)

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            add(event, 1, 1)
            open_nodes.append([event.anchor, 1, 1])
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            anchor, values, depth = open_nodes.pop()
            if anchor is not None:
                named[anchor] = (values, depth)
            into_parent(values, depth)
        elif isinstance(event, yaml.ScalarEvent):
            add(event, 1, 0)
            if event.anchor is not None:
                named[event.anchor] = (1, 0)
            into_parent(1, 0)
        elif isinstance(event, yaml.AliasEvent) and event.anchor in named:
            values, depth = named[event.anchor]
            add(event, values, depth)
            into_parent(values, depth)


def load(path: str | Path) -> Scenario:
    """Parse and validate a scenario file; raise ScenarioError naming the line on bad input."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from err
    loader = _Loader(text)
    try:
        _check_shape(text)
        root = loader.get_single_node()
        if root is None:
            raise ScenarioError(f"{path}: empty scenario")
        data = loader.construct_document(root)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = "" if isinstance(err, _ShapeError) else "invalid YAML: "
        raise ScenarioError(f"{where}: {what}{getattr(err, 'problem', err)}") from err
    except RecursionError as err:  # a backstop: _check_shape bounds the nesting first
        raise ScenarioError(f"{path}: nested too deep to read") from err
    finally:
        loader.dispose()

    def fail(node: yaml.Node, message: str) -> ScenarioError:
        return ScenarioError(f"{path}:{_line(node)}: {message}")

    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise fail(root, "a scenario is a mapping with name, clusters, konnector, setup, steps")
    nodes = {k.value: v for k, v in root.value}
    unknown = set(data) - {"name", "seed", "clusters", "konnector", "setup", "steps"}
    if unknown:
        raise fail(root, f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    clusters = data.get("clusters")
    if (
        not isinstance(clusters, list)
        or not clusters
        or not all(isinstance(c, str) and c for c in clusters)
    ):
        raise fail(nodes.get("clusters", root), "clusters: a non-empty list of cluster names")
    k = data.get("konnector")
    if not isinstance(k, dict) or k.get("cluster") not in clusters:
        raise fail(
            nodes.get("konnector", root),
            f"konnector: {{cluster: one of {clusters}, namespace: ...}}",
        )
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise fail(nodes.get("seed", root), "seed: an integer")

    setup: list[tuple[int, str, dict[str, Any]]] = []
    setup_node = nodes.get("setup")
    for item, node in zip(data.get("setup") or [], getattr(setup_node, "value", []), strict=False):
        if not isinstance(item, dict) or item.get("cluster") not in clusters:
            raise fail(node, f"setup item needs cluster: one of {clusters}")
        if "object" in item:
            objs = [item["object"]]
        elif "file" in item:
            objs = _read_manifests(path.parent / str(item["file"]), fail, node)
        else:
            raise fail(node, "setup item needs object: or file:")
        for obj in objs:
            _check_manifest(obj, fail, node)
            setup.append((_line(node), item["cluster"], obj))

    steps: list[Step] = []
    steps_node = nodes.get("steps")
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise fail(steps_node or root, "steps: a list")
    for i, (item, node) in enumerate(
        zip(raw_steps, getattr(steps_node, "value", []), strict=False), 1
    ):
        steps.append(_check_step(i, item, node, clusters, fail))
    return Scenario(
        name=str(data.get("name") or path.stem),
        path=path,
        seed=seed,
        clusters=tuple(clusters),
        konnector_cluster=k["cluster"],
        konnector_namespace=str(k.get("namespace") or "kube-bind"),
        setup=tuple(setup),
        steps=tuple(steps),
    )


def _read_manifests(file: Path, fail: Any, node: yaml.Node) -> list[dict[str, Any]]:
    try:
        text = file.read_text()
        _check_shape(text)
        docs = list(yaml.load_all(text, Loader=_Loader))
    except OSError as err:
        raise fail(node, f"cannot read {file}: {err.strerror}") from err
    except yaml.YAMLError as err:
        raise fail(node, f"{file}: invalid YAML: {err}") from err
    return [d for d in docs if d is not None]


def _check_manifest(obj: Any, fail: Any, node: yaml.Node) -> None:
    if not isinstance(obj, dict):
        raise fail(node, "a manifest must be a mapping")
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj.get(field):
            raise fail(node, f"manifest is missing {field}")
    if not o.name(obj):
        raise fail(node, "manifest is missing metadata.name")


def _check_step(i: int, item: Any, node: yaml.Node, clusters: list[str], fail: Any) -> Step:
    if not isinstance(item, dict):
        raise fail(node, f"step {i}: a mapping")
    kinds = [k for k in STEP_KINDS if k in item]
    if len(kinds) != 1:
        raise fail(
            node,
            f"step {i}: exactly one of {', '.join(STEP_KINDS)} "
            f"(got {', '.join(map(str, item)) or 'nothing'})",
        )
    kind = kinds[0]
    if kind in USER_WRITES:
        if item.get("cluster") not in clusters:
            raise fail(node, f"step {i}: {kind} needs cluster: one of {clusters}")
        _check_manifest(item[kind], fail, node)
    elif kind == "fault":
        f = item["fault"]
        problem = (
            check_fault(f, clusters)
            if isinstance(f, dict)
            else "fault: {kind: ..., cluster: ..., <parameters>}"
        )
        if problem:
            raise fail(_fault_node(node), f"step {i}: {problem} (`kbsim faults` lists them)")
    elif kind == "advance":
        _duration(item["advance"], fail, node, i)
    elif kind == "quiet":
        q = item["quiet"]
        limit = q.get("writes_at_most", 0) if isinstance(q, dict) else None
        if (
            not isinstance(q, dict)
            or "for" not in q
            or not isinstance(limit, int)
            or isinstance(limit, bool)
            or limit < 0
            or (q.get("cluster") is not None and q["cluster"] not in clusters)
            or not all(isinstance(q.get(k, ""), str) for k in ("cluster", "resource"))
        ):
            raise fail(
                node,
                f"step {i}: quiet: {{for: 60s, writes_at_most: 0, cluster: one of {clusters}, "
                "resource: <plural>.<group>}} (cluster and resource optional)",
            )
        _duration(q["for"], fail, node, i)
    elif kind == "settle":
        s = item["settle"] or {}
        if not isinstance(s, dict):
            raise fail(node, f"step {i}: settle: {{timeout: 60s}}")
        _duration(s.get("timeout", "60s"), fail, node, i)
    else:
        e = item["expect"]
        if not isinstance(e, dict) or e.get("cluster") not in clusters:
            raise fail(node, f"step {i}: expect needs cluster: one of {clusters}")
        forms = [f for f in EXPECT_FORMS if f in e]
        if len(forms) != 1:
            raise fail(node, f"step {i}: expect needs exactly one of object:, absent: or no_copy:")
        ref = e[forms[0]]
        _check_manifest(ref, fail, node)
        for field in (
            "matches",
            "conditions",
            "api_conditions",
            "bound_apis",
            "condition_messages",
        ):
            if field in e and "object" not in e:
                raise fail(node, f"step {i}: {field}: goes with object:")
        if not _condition_map(e.get("conditions", {})):
            raise fail(node, f'step {i}: conditions: {{Type: "True"}} or {{Type: "False/Reason"}}')
        messages = e.get("condition_messages", {})
        if not isinstance(messages, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            for v in messages.values()
        ):
            raise fail(node, f'step {i}: condition_messages: {{Type: "text"}} or {{Type: [...]}}')
        per_api = e.get("api_conditions", {})
        if not isinstance(per_api, dict) or not all(map(_condition_map, per_api.values())):
            raise fail(node, f'step {i}: api_conditions: {{<api name>: {{Type: "True"}}}}')
        bound = e.get("bound_apis", {})
        if not isinstance(bound, dict) or not all(isinstance(v, dict) for v in bound.values()):
            raise fail(node, f"step {i}: bound_apis: {{<api name>: {{field: value}}}}")
    return Step(i, _line(node), kind, item)


def _fault_node(step: yaml.Node) -> yaml.Node:
    """The step's `fault:` mapping node, so an error points at the fault's own line."""
    for key, value in getattr(step, "value", []):
        if isinstance(key, yaml.ScalarNode) and key.value == "fault":
            return value  # type: ignore[no-any-return]
    return step


def _condition_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, str) and v.split("/")[0] in ("True", "False", "Unknown")
        for v in value.values()
    )


def _duration(value: Any, fail: Any, node: yaml.Node, i: int) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise fail(node, f"step {i}: {err}") from err


# -- running ------------------------------------------------------------------------------------


@attrs.define
class StepResult:
    step: Step
    outcome: str = "not run"
    detail: str = ""


@attrs.define
class Result:
    scenario: Scenario
    seed: int
    steps: list[StepResult]
    invariants: dict[str, str]
    actions: dict[str, int]
    virtual_seconds: float
    requests: int = 0

    @property
    def passed(self) -> bool:
        return all(s.outcome == "ok" for s in self.steps) and all(
            v == "held" for v in self.invariants.values()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "passed": self.passed,
            "steps": [
                {
                    "index": r.step.index,
                    "line": r.step.line,
                    "step": r.step.describe(),
                    "outcome": r.outcome,
                    **({"detail": r.detail} if r.detail else {}),
                }
                for r in self.steps
            ],
            "invariants": self.invariants,
            "actions": dict(sorted(self.actions.items())),
            "virtual_seconds": round(self.virtual_seconds, 3),
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"scenario {self.scenario.name} (seed {self.seed}): {verdict} after "
            f"{self.virtual_seconds:.1f} virtual seconds"
        ]
        for r in self.steps:
            mark = {"ok": "ok", "failed": "FAILED", "not run": "not run"}[r.outcome]
            lines.append(
                f"  {r.step.index:3d}  line {r.step.line:<4d} {r.step.describe():<58} {mark}"
            )
            if r.detail:
                lines.append(f"         {r.detail}")
        lines.append("invariants:")
        for name, state in self.invariants.items():
            lines.append(f"  {name:<45} {state if state == 'held' else 'VIOLATED: ' + state}")
        acts = ", ".join(f"{k} {v}" for k, v in sorted(self.actions.items())) or "none"
        lines.append(f"konnector actions: {acts}")
        return "\n".join(lines)


def build_world(sc: Scenario, seed: int, **konnector_args: Any) -> World:
    world = World(list(sc.clusters), seed=seed)
    world.monitor.consumer_cluster = sc.konnector_cluster
    consumer = world.clusters[sc.konnector_cluster]
    for crd in crdgen.all_crds():
        consumer.create(CRDS, o.deepcopy(dict(crd)))
    _ensure_namespace(consumer, sc.konnector_namespace)
    world.settle(5.0)
    for line, cluster, obj in sc.setup:
        try:
            user_write(world, "apply", cluster, obj)
        except ApiError as err:
            raise ScenarioError(f"{sc.path}:{line}: setup failed: {err.message}") from err
        world.settle(5.0)
    world.start_konnector(
        lambda: SimKonnector(world, sc.konnector_cluster, sc.konnector_namespace, **konnector_args)
    )
    return world


def _ensure_namespace(server: Any, name: str) -> None:
    try:
        server.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
    except ApiError as err:
        if not err.is_already_exists:
            raise


def gvr_of(world: World, cluster: str, obj: dict[str, Any]) -> GVR:
    return world.clusters[cluster].kind_to_gvr(obj["apiVersion"], obj["kind"])


def user_write(world: World, verb: str, cluster: str, obj: dict[str, Any]) -> None:
    server = world.clusters[cluster]
    gvr = gvr_of(world, cluster, obj)
    key = ObjectKey(o.namespace(obj), o.name(obj))
    body = o.deepcopy(obj)

    def call() -> Any:
        if verb == "apply":
            return server.patch(
                gvr, key, body, "apply", field_manager=USER_MANAGER, force=True, user=ADMIN
            )
        if verb == "create":
            return server.create(gvr, body, user=ADMIN, field_manager=USER_MANAGER)
        if verb == "delete":
            return server.delete(gvr, key, user=ADMIN)
        if verb == "patch":
            return server.patch(gvr, key, body, "merge", field_manager=USER_MANAGER, user=ADMIN)
        if verb == "status":
            return server.patch(
                gvr,
                key,
                {"status": body.get("status")},
                "merge",
                field_manager=USER_MANAGER,
                subresource="status",
                user=ADMIN,
            )
        raise ValueError(verb)

    world.user_call(call)


def unmet_expectation(world: World, e: dict[str, Any]) -> str:
    """'' when the expectation holds, else why not."""
    cluster = e["cluster"]
    ref = next(e[f] for f in EXPECT_FORMS if f in e)
    try:
        gvr = gvr_of(world, cluster, ref)
        obj = world.clusters[cluster].get(gvr, ObjectKey(o.namespace(ref), o.name(ref)))
    except ApiError as err:
        if not err.is_not_found:
            return f"cannot read: {err.message}"
        obj = None
    if "absent" in e:
        return "" if obj is None else f"present (uid {o.uid(obj)})"
    if "no_copy" in e:
        if obj is None or o.labels_of(obj).get(keys.LABEL_MANAGED) != "true":
            return ""
        return f"a kube-bind copy is there (uid {o.uid(obj)}, annotations {o.annotations_of(obj)})"
    if obj is None:
        return "not found"
    want = e.get("matches")
    if want is not None and not o.contains(obj, want):
        return _mismatch("does not match", _relevant(obj, want), want, obj)
    why = _conditions_hold(obj.get("status") or {}, e.get("conditions") or {})
    if why:
        return why
    why = _messages_hold(obj.get("status") or {}, e.get("condition_messages") or {})
    if why:
        return why
    apis = {
        a.get("name"): a
        for a in (obj.get("status") or {}).get("boundAPIs") or []
        if isinstance(a, dict)
    }
    for name, wanted in (e.get("api_conditions") or {}).items():
        if name not in apis:
            return f"no boundAPIs entry {name}"
        why = _conditions_hold(apis[name], wanted)
        if why:
            return f"{name}: {why}"
    for name, fields in (e.get("bound_apis") or {}).items():
        if name not in apis:
            return f"no boundAPIs entry {name}"
        if not o.contains(apis[name], fields):
            have = _relevant(apis[name], fields)
            return _mismatch(f"boundAPIs {name} does not match", have, fields, obj)
    return ""


def _mismatch(what: str, have: Any, want: Any, obj: dict[str, Any]) -> str:
    """`what`, then the fields that differ, `path: have -> want` (a Secret's data hidden)."""
    lines = diff.render(diff.changes(have, want), have, want, secret=obj.get("kind") == "Secret")
    if not lines:  # equal as values, yet not contained: show both whole
        return f"{what} {_shown(want)}: have {_shown(have)}"
    return f"{what} (have -> want): " + "; ".join(lines)


def _conditions_hold(holder: dict[str, Any], wanted: dict[str, str]) -> str:
    """'' when every wanted condition type has the wanted status (or status/reason)."""
    conds = [c for c in holder.get("conditions") or [] if isinstance(c, dict)]
    have = {c.get("type"): f"{c.get('status')}/{c.get('reason')}" for c in conds}
    for type_, expected in wanted.items():
        got = have.get(type_, "<missing>")
        if got != expected and got.split("/")[0] != expected:
            message = next((c.get("message") for c in conds if c.get("type") == type_), "")
            return f"condition {type_} is {got}, want {expected}" + (
                f" ({message})" if message else ""
            )
    return ""


def _messages_hold(holder: dict[str, Any], wanted: dict[str, str | list[str]]) -> str:
    """'' when every wanted condition's message contains the wanted text."""
    conds = [c for c in holder.get("conditions") or [] if isinstance(c, dict)]
    for type_, texts in wanted.items():
        message = next((c.get("message") for c in conds if c.get("type") == type_), None)
        if message is None:
            return f"no condition {type_}"
        for text in [texts] if isinstance(texts, str) else texts:
            if text not in str(message):
                return f"condition {type_} message lacks {text!r}: {message!r}"
    return ""


def _relevant(obj: dict[str, Any], want: Any) -> Any:
    """The parts of `obj` that `want` names (a Walk: expectations may be `!nest` deep)."""
    return o.run_walk(_relevant_walk(obj, want))


def _relevant_walk(obj: Any, want: Any) -> o.Walk[Any]:
    if isinstance(want, dict) and isinstance(obj, dict):
        out = {}
        for k, v in want.items():
            out[k] = (yield _relevant_walk(obj[k], v)) if k in obj else "<missing>"
        return out
    return obj


SHOWN_DEPTH = 20


def _shown(value: Any) -> str:
    """`value` for a message: as Python prints it, or, nested deeper than a reader follows, its
    first 200 characters of JSON."""
    if limits.json_depth(value, SHOWN_DEPTH) <= SHOWN_DEPTH:
        return str(value)
    return o.canonical_json(value)[:200] + "..."


def run(sc: Scenario, seed: int | None = None, **konnector_args: Any) -> Result:
    seed = sc.seed if seed is None else seed
    world = build_world(sc, seed, **konnector_args)
    results = [StepResult(s) for s in sc.steps]
    for r in results:
        s = r.step
        try:
            r.detail = _run_step(world, s)
        except ApiError as err:
            r.detail = f"{err.code} {err.reason}: {err.message}"
        except ValueError as err:
            r.detail = str(err)
        r.outcome = "failed" if r.detail else "ok"
        if r.outcome == "failed":
            r.detail = f"step {s.index} (line {s.line}) failed: {r.detail}"
            break
    return Result(
        sc,
        seed,
        results,
        world.monitor.held(),
        dict(world.actions),
        world.now - START_TIME,
        world.requests,
    )


def _run_step(world: World, s: Step) -> str:
    b = s.body
    if s.kind in USER_WRITES:
        user_write(world, s.kind, b["cluster"], b[s.kind])
        return ""
    if s.kind == "fault":
        world.inject(b["fault"]["kind"], dict(b["fault"]))
        return ""
    if s.kind == "advance":
        world.advance(parse_duration(b["advance"]))
        return ""
    if s.kind == "quiet":
        return _quiet(world, b["quiet"])
    if s.kind == "settle":
        timeout = parse_duration((b.get("settle") or {}).get("timeout", "60s"))
        if world.settle(timeout):
            return ""
        return f"not settled within {timeout:g}s: {_pending(world)}"
    return unmet_expectation(world, b["expect"])


def _quiet(world: World, q: dict[str, Any]) -> str:
    """'' when the konnector sent at most `writes_at_most` matching writes during `for`."""

    def matching() -> Counter[tuple[str, str]]:
        return Counter(
            {
                k: n
                for k, n in world.writes.items()
                if (not q.get("cluster") or k[0] == q["cluster"])
                and (not q.get("resource") or k[1] == q["resource"])
            }
        )

    before = matching()
    world.advance(parse_duration(q["for"]))
    sent = matching() - before
    limit = int(q.get("writes_at_most", 0))
    if sum(sent.values()) <= limit:
        return ""
    detail = ", ".join(f"{n} to {c} {r}" for (c, r), n in sorted(sent.items()))
    return f"the konnector sent {sum(sent.values())} write(s), at most {limit} allowed: {detail}"


def _pending(world: World) -> str:
    k = world.konnector
    parts = []
    if k is not None and (k.queue.pending() or k.queue.next_due() is not None):
        parts.append(f"{k.queue.pending()} keys queued, retries pending")
    if world.restart_at is not None:
        parts.append("konnector restarting")
    if any(s.inflight for s in world.streams):
        parts.append("watch events in flight")
    if any(srv.pending_work() for srv in world.clusters.values()):
        parts.append("cluster controllers busy")
    tail = world.logs[-3:]
    return "; ".join(parts) + (f"; last log: {tail}" if tail else "")


def kubeconfig_secret(
    namespace: str, name: str, cluster: str, token: str = "admin"
) -> dict[str, Any]:
    """A Secret holding a kubeconfig that addresses simulated cluster `cluster`."""
    text = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": cluster,
            "clusters": [{"name": cluster, "cluster": {"server": f"https://{cluster}.kbsim"}}],
            "users": [{"name": token, "user": {"token": token}}],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": token}}],
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": namespace, "name": name},
        "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
    }
