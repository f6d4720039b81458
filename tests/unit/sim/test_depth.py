"""Hostile depth and size in kbsim: scenario files, the worker-exception invariant, traces.

- A scenario file nested deeper than the YAML reader follows, or whose aliases expand to a
  "billion laughs", is a scenario error naming the file and line (exit 2), not a traceback.
- `!nest` and `!repeat` build deep and large values, and say what is wrong with bad arguments.
- A worker that raises is the `kernel-never-raises` violation: the run goes on and fails.
- A run with statuses deeper than Python recurses records and replays with no divergence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore import objects as o
from kbcore.runtime import trace
from kbcore.sync.instance import plan_instance
from kbsim import cli, scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
HEAD = "clusters: [a]\nkonnector: {cluster: a}\n"


def _run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    p = tmp_path / "scenario.yaml"
    p.write_text(text)
    code = cli.main(["run", str(p)])
    return code, capsys.readouterr().err.replace(str(p), "FILE")


def test_a_deeply_nested_scenario_file_is_a_scenario_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    block = "".join("  " * i + "k:\n" for i in range(1, 3000))
    code, err = _run(tmp_path, HEAD + "steps:\n" + block, capsys)
    assert code == 2
    assert err == (
        "kbsim: FILE:103: nests more than 100 levels deep; build deep values with !nest\n"
    )
    code, err = _run(tmp_path, HEAD + "steps: " + "[" * 20_000 + "]" * 20_000 + "\n", capsys)
    assert (code, err) == (
        2,
        "kbsim: FILE:3: nests more than 100 levels deep; build deep values with !nest\n",
    )


def test_a_billion_laughs_is_refused_where_it_expands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 9)]
    code, err = _run(tmp_path, HEAD + "\n".join(lines) + "\n", capsys)
    assert code == 2
    assert err == (
        "kbsim: FILE:8: expands to more than 1000000 values through its aliases; write the "
        "values out or build them with !nest or !repeat\n"
    )


def test_a_manifest_file_is_held_to_the_same_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "deep.yaml").write_text("a: " + "[" * 500 + "]" * 500 + "\n")
    code, err = _run(tmp_path, HEAD + "setup:\n  - {cluster: a, file: deep.yaml}\n", capsys)
    assert code == 2 and err.startswith("kbsim: FILE:4: ") and "nests more than 100" in err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!nest {depth: -1}", "FILE:5: invalid YAML: !nest: depth must be an integer from 0"),
        ("!nest {depth: 2, path: []}", "FILE:5: invalid YAML: !nest: key is a string, path a"),
        ("!nest {depht: 2}", "FILE:5: invalid YAML: !nest: unknown key(s) depht; it takes"),
        ("!nest [1]", "FILE:5: invalid YAML: !nest takes a mapping"),
        ('!repeat {text: "", times: 3}', "FILE:5: invalid YAML: !repeat: text must be a non-empty"),
    ],
)
def test_bad_generator_arguments_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    text = (
        HEAD + "setup:\n  - cluster: a\n    object: {apiVersion: v1, kind: ConfigMap, "
        f"metadata: {{name: x}}, data: {value}}}\n"
    )
    code, err = _run(tmp_path, text, capsys)
    assert code == 2 and message in err, err


def test_generators_build_what_they_say() -> None:
    loader = scenario._Loader  # the scenario loader, tags included
    assert yaml.load("!nest {depth: 2, leaf: x}", Loader=loader) == {"a": {"a": "x"}}
    assert yaml.load("!nest {depth: 2, list: true, leaf: 1}", Loader=loader) == [[1]]
    built = yaml.load(
        "!nest {depth: 2, path: [properties, x], each: {type: object}, leaf: {type: string}}",
        Loader=loader,
    )
    assert built == {
        "type": "object",
        "properties": {"x": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }
    assert yaml.load("!repeat {text: ab, times: 3}", Loader=loader) == "ababab"


def test_a_worker_exception_is_the_kernel_never_raises_violation() -> None:
    sc = scenario.load(SCENARIOS / "happy-path" / "scenario.yaml")

    def broken(view: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    world = scenario.build_world(sc, 3, planner=broken)
    world.settle(30)
    scenario.user_write(
        world,
        "create",
        "consumer",
        {
            "apiVersion": "example.org/v1",
            "kind": "Widget",
            "metadata": {"namespace": "default", "name": "w1"},
            "spec": {"size": "s"},
        },
    )
    world.advance(5)
    held = world.monitor.held()
    assert held["kernel-never-raises"].endswith(
        "instance widgets.example.org default/w1: RecursionError: maximum recursion depth exceeded"
    )
    # The run went on: the control plane still reconciled (the binding is Ready).
    assert all(v == "held" for k, v in held.items() if k != "kernel-never-raises")


def test_a_run_with_deep_statuses_replays_with_no_divergence() -> None:
    records: list[dict[str, Any]] = []
    # Through JSON text, as a trace file holds it (deeper than json.dumps/loads recurse).
    result = scenario.run(
        scenario.load(SCENARIOS / "hostile-deep-status" / "scenario.yaml"),
        recorder=lambda r: records.append(o.parse_json(o.canonical_json(r))),
    )
    assert result.passed, result.summary()
    assert any("deepest" in str(r["key"]) for r in records)
    for r in records:
        divergence = trace.replay(r, planner=plan_instance)
        assert divergence is None, divergence.describe()


@pytest.mark.parametrize(
    ("name", "module", "function", "invariant"),
    [
        # kbcore.schema.policy R4 without its depth check installs the 600-level schema.
        (
            "hostile-deep-schema",
            "kbcore.schema.policy",
            "schema_depth_problem",
            "schemas-within-depth",
        ),
    ],
)
def test_the_invariants_catch_a_kernel_without_its_limit_check(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str, function: str, invariant: str
) -> None:
    monkeypatch.setattr(f"{module}.{function}", lambda _value: "")
    result = scenario.run(scenario.load(SCENARIOS / name / "scenario.yaml"))
    assert not result.passed
    assert result.invariants[invariant] != "held", result.invariants
