"""kbsim scenarios: every example passes, a wrong expectation fails loudly, bad files are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from kbsim import cli, scenario

EXAMPLES = sorted(Path("examples/scenarios").glob("*/scenario.yaml"))


def test_there_are_examples_for_every_required_case() -> None:
    names = {p.parent.name for p in EXAMPLES}
    assert {
        "quickstart",
        "conflict-fail",
        "conflict-adopt",
        "orphan",
        "drift-repair",
        "crash-mid-sync",
    } <= names
    # Issue 4: upstream's e2e steps kbsim can express (docs/design.md, "Upstream's end-to-end
    # steps"), and the hostile-provider set.
    assert {
        "happy-path",
        "late-secret",
        "policies",
        "restricted-provider",
        "openapi-source",
        "kcp-like-provider",
        "related-resources",
        "disengage",
        "namespaced-binding",
        "identity-changed",
        "unbind-teardown",
        "hostile-conversion-webhook",
        "hostile-protected-group",
        "hostile-exec-kubeconfig",
        "hostile-tokenfile-kubeconfig",
        "hostile-foreign-related-secret",
    } <= names
    # Issue 12: the trust boundary.
    assert {
        "hostile-self-binding",
        "hostile-duplicate-kubeconfig-names",
        "hostile-plain-http-kubeconfig",
    } <= names
    assert {
        "hostile-related-kube-system",
        "hostile-related-credential-types",
        "hostile-related-new-namespace",
        "hostile-related-consumer-upload",
    } <= names
    # Issue 12: provider schema changes and per-API refusals.
    assert {
        "hostile-scope-change",
        "hostile-scope-change-openapi",
        "hostile-version-removed",
        "hostile-mixed-binding",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_passes_with_json_output(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(out, indent=2)
    assert out["passed"] is True
    assert set(out) == {
        "scenario",
        "seed",
        "passed",
        "steps",
        "invariants",
        "actions",
        "virtual_seconds",
    }
    assert all(s["outcome"] == "ok" for s in out["steps"])
    assert all(v == "held" for v in out["invariants"].values())
    assert out["virtual_seconds"] > 0


def test_the_readable_run_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo` names the file its step lines refer to, says the clusters are simulated,
    says what was shown and what to try next; `--json` stays one JSON object and nothing else."""
    path = Path("examples/scenarios/quickstart/scenario.yaml")
    assert cli.main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"kbsim: running {path}\n")
    assert "clusters provider, consumer: simulated in memory, on a virtual clock" in out
    assert "no real cluster is started" in out.replace("\n  ", " ")
    assert "line 13   create consumer Widget default/w1" in out  # the step table is unchanged
    shows = out.split("what it shows (the comment at the top of the file):\n", 1)[1]
    assert shows.startswith("  Bind widgets.example.org and follow one Widget through its life")
    assert f'"line N" is the line of a step in {path}.' in out
    assert "try next:\n" in out and "crash-mid-sync/scenario.yaml\n" in out
    assert "kbsim faults" in out

    assert cli.main(["run", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # the whole output parses: nothing around it
    assert data["scenario"] == "quickstart" and data["passed"] is True


def test_same_seed_same_run() -> None:
    sc = scenario.load(Path("examples/scenarios/crash-mid-sync/scenario.yaml"))
    a, b = scenario.run(sc, seed=5), scenario.run(sc, seed=5)
    assert a.to_json() == b.to_json()


def _write(tmp_path: Path, text: str) -> Path:
    common = Path("examples/scenarios/_common").resolve()
    p = tmp_path / "scenario.yaml"
    p.write_text(textwrap.dedent(text).replace("COMMON", str(common)))
    return p


# How the scenarios below begin, after their name (indented, as `_write` takes it): widgets
# exported on the provider, the bundle on the consumer, and a first settle.
BOUND = """\
    clusters: [provider, consumer]
    konnector: {cluster: consumer, namespace: kube-bind}
    setup:
      - {cluster: provider, file: COMMON/widgets-crd.yaml}
      - {cluster: consumer, file: COMMON/bundle.yaml}
    steps:
      - settle: {timeout: 30s}
"""
# A consumer Widget for the konnector to sync (a step of the scenarios below).
CREATE_W1 = """\
      - cluster: consumer
        create: {apiVersion: example.org/v1, kind: Widget, metadata: {namespace: default, name: w1}, spec: {size: large}}
"""


QUICK = (
    "    name: wrong\n"
    + BOUND
    + CREATE_W1
    + """\
      - settle: {timeout: 30s}
      - expect:
          cluster: provider
          object: {apiVersion: example.org/v1, kind: Widget, metadata: {namespace: default, name: w1}}
          matches: {spec: {size: small}}
      - advance: 1s
    """
)


def test_wrong_expectation_exits_nonzero_and_says_which_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, QUICK)
    assert cli.main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "step 4 (line 12) failed" in out
    assert 'does not match (have -> want): spec.size: "large" -> "small"' in out
    assert cli.main(["run", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [s["outcome"] for s in data["steps"]] == ["ok", "ok", "ok", "failed", "not run"]


NOT_A_COPY = "    name: expectations\n" + BOUND + CREATE_W1 + """\
      - settle: {timeout: 30s}
      - expect: {cluster: consumer, no_copy: {apiVersion: v1, kind: Secret, metadata: {namespace: default, name: nothing}}}
      - expect: {cluster: consumer, no_copy: {apiVersion: example.org/v1, kind: Widget, metadata: {namespace: default, name: w1}}}
      - expect:
          cluster: consumer
          object: {apiVersion: core.kube-bind.io/v1alpha1, kind: ClusterBinding, metadata: {name: widgets}}
          condition_messages: {Ready: [binding, ready]}
      - expect:
          cluster: consumer
          object: {apiVersion: core.kube-bind.io/v1alpha1, kind: ClusterBinding, metadata: {name: widgets}}
          condition_messages: {Ready: "not what it says"}
      - expect: {cluster: provider, no_copy: {apiVersion: example.org/v1, kind: Widget, metadata: {namespace: default, name: w1}}}
    """  # fmt: skip


def test_no_copy_and_condition_message_expectations(tmp_path: Path) -> None:
    sc = scenario.load(_write(tmp_path, NOT_A_COPY))
    result = scenario.run(sc)
    outcomes = [(s.outcome, s.detail) for s in result.steps]
    # Absent, and present but not made by kube-bind (the user's own Widget): both no copy.
    assert [o for o, _ in outcomes[:6]] == ["ok"] * 6
    assert outcomes[6][0] == "failed"
    assert "condition Ready message lacks 'not what it says': 'binding ready'" in outcomes[6][1]
    assert result.steps[6].step.describe().startswith("expect consumer ClusterBinding")
    # The provider copy carries the managed label: a copy.
    sc = attrs.evolve(sc, steps=sc.steps[:6] + sc.steps[7:])
    result = scenario.run(sc)
    assert result.steps[-1].outcome == "failed"
    assert "a kube-bind copy is there" in result.steps[-1].detail
    assert result.steps[-1].step.describe() == "expect provider Widget default/w1 not a copy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [a]\nkonnector: {cluster: b}\n", ":2: konnector:"),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - {aply: {}}\n",
            ":4: step 1: exactly one of",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - {advance: soon}\n",
            ":4: step 1: not a duration",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - {fault: {kind: meteor}}\n",
            ":4: step 1: fault kind must be one of",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nbogus: 1\n",
            ":1: unknown top-level key(s): bogus",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - cluster: a\n    create: {kind: X}\n",
            ":4: manifest is missing apiVersion",
        ),
        ("clusters: [a\n", "invalid YAML"),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - expect: {cluster: a, object: {apiVersion: v1, kind: X, metadata: {name: x}}, conditions: {Ready: yes}}\n",
            ':4: step 1: conditions: {Type: "True"} or {Type: "False/Reason"}',
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - expect: {cluster: a, object: {apiVersion: v1, kind: X, metadata: {name: x}}, bound_apis: [x]}\n",
            ":4: step 1: bound_apis: {<api name>: {field: value}}",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - expect: {cluster: a, object: {apiVersion: v1, kind: X, metadata: {name: x}}, condition_messages: {Ready: 3}}\n",
            ':4: step 1: condition_messages: {Type: "text"} or {Type: [...]}',
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - expect: {cluster: a, no_copy: {apiVersion: v1, kind: X, metadata: {name: x}}, matches: {}}\n",
            ":4: step 1: matches: goes with object:",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - expect: {cluster: a, absent: {apiVersion: v1, kind: X, metadata: {name: x}}, no_copy: {apiVersion: v1, kind: X, metadata: {name: x}}}\n",
            ":4: step 1: expect needs exactly one of object:, absent: or no_copy:",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - quiet: {writes_at_most: 0}\n",
            ":4: step 1: quiet: {for: 60s",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - quiet: {for: 5s, writes_at_most: -1}\n",
            ":4: step 1: quiet:",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - quiet: {for: 5s, cluster: b}\n",
            ":4: step 1: quiet:",
        ),
        (
            "clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - quiet: {for: later}\n",
            ":4: step 1: not a duration",
        ),
    ],
)
def test_malformed_scenario_names_the_line(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    assert cli.main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and message in err, err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


FAULT_SCENARIO = """\
clusters: [a, b]
konnector: {cluster: a}
steps:
  - settle: {timeout: 1s}
  - fault:
      FAULT
"""


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("{kind: meteor}", "fault kind must be one of drop-watch-events, "),
        ("{cluster: a}", "fault kind must be one of"),
        (
            "{kind: api-errors, cluster: a, rate: 1.5}",
            "fault api-errors rate: not a probability: 1.5",
        ),
        ("{kind: api-errors, cluster: a, rate: -0.1}", "rate: not a probability: -0.1"),
        ("{kind: api-errors, cluster: a, rate: .nan}", "rate: not a probability: nan"),
        ("{kind: api-errors, cluster: a, rate: half}", "rate: not a probability: 'half'"),
        ("{kind: api-errors, cluster: a, rate: true}", "rate: not a probability: True"),
        ("{kind: api-errors, cluster: a, code: 200}", "code: not an HTTP error status: 200"),
        ("{kind: api-errors, cluster: a, code: '500'}", "code: not an HTTP error status: '500'"),
        (
            "{kind: api-errors, cluster: a, retry_after: -1}",
            "retry_after: not a number of seconds: -1",
        ),
        (
            "{kind: api-errors, cluster: a, after_write: yes please}",
            "after_write: not true or false",
        ),
        (
            "{kind: stale-reads, cluster: a, duration: -5s}",
            "fault stale-reads duration: not a duration: '-5s'",
        ),
        ("{kind: stale-reads, cluster: a, duration: .inf}", "duration: not a duration: inf"),
        ("{kind: stale-reads, cluster: a, duration: soon}", "duration: not a duration: 'soon'"),
        ("{kind: delay-watch-events, cluster: a, by: 2 parsecs}", "by: not a duration"),
        ("{kind: crash-konnector, after_actions: -1}", "after_actions: not a count: -1"),
        ("{kind: crash-konnector, after_actions: 1.5}", "after_actions: not a count: 1.5"),
        ("{kind: crash-konnector, restart_after: never}", "restart_after: not a duration"),
        (
            "{kind: crash-konnector, cluster: a}",
            "fault crash-konnector: unknown parameter(s) cluster; it takes after_actions, restart_after",
        ),
        (
            "{kind: compact, cluster: a, duration: 5s}",
            "fault compact: unknown parameter(s) duration; it takes cluster",
        ),
        (
            "{kind: drop-watch-events, cluster: a, durration: 5s}",
            "unknown parameter(s) durration; it takes cluster, duration",
        ),
        (
            "{kind: drop-watch-events, cluster: c}",
            "fault drop-watch-events needs cluster: one of ['a', 'b']",
        ),
        ("null", "fault: {kind: ..., cluster: ..., <parameters>}"),
    ],
)
def test_fault_parameters_are_checked_when_the_scenario_loads(
    tmp_path: Path, fault: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "faulty.yaml"
    p.write_text(FAULT_SCENARIO.replace("FAULT", fault))
    with pytest.raises(scenario.ScenarioError) as err:
        scenario.load(p)
    assert str(err.value).startswith(f"{p}:6: step 2: "), err.value
    assert message in str(err.value) and "(`kbsim faults` lists them)" in str(err.value)
    assert cli.main(["run", str(p)]) == 2
    assert f"kbsim: {p}:6: step 2: " in capsys.readouterr().err


@pytest.mark.parametrize(
    "fault",
    [
        "{kind: api-errors, cluster: b, code: 429, rate: 1, retry_after: 2, after_write: true, duration: 1s}",
        "{kind: api-errors, cluster: a, rate: 0}",
        "{kind: delay-watch-events, cluster: a, by: 100ms, duration: 0.5}",
        "{kind: crash-konnector, after_actions: 0, restart_after: 0s}",
        "{kind: expire-watches, cluster: b}",
    ],
)
def test_good_fault_parameters_load(tmp_path: Path, fault: str) -> None:
    p = tmp_path / "fine.yaml"
    p.write_text(FAULT_SCENARIO.replace("FAULT", fault))
    assert scenario.load(p).steps[1].kind == "fault"


def test_kbsim_faults_lists_every_kind_with_its_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kbsim.world import FAULT_KINDS, FAULT_PARAMS

    assert set(FAULT_KINDS) == set(FAULT_PARAMS)
    assert cli.main(["faults"]) == 0
    blocks: dict[str, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith(" "):
            blocks[line] = []
        else:
            blocks[list(blocks)[-1]].append(line.strip())
    assert list(blocks) == list(FAULT_KINDS)
    for kind, params in FAULT_PARAMS.items():
        listed = [line.split(":", 1)[0] for line in blocks[kind][1:]]
        cluster = [] if kind == "crash-konnector" else ["cluster"]
        assert listed == [*cluster, *params], kind
    assert "rate: a probability from 0 to 1, default 0.5" in blocks["api-errors"]


def test_a_negative_advance_is_refused_when_the_scenario_loads(tmp_path: Path) -> None:
    p = tmp_path / "back.yaml"
    p.write_text("clusters: [a]\nkonnector: {cluster: a}\nsteps:\n  - {advance: -10s}\n")
    with pytest.raises(scenario.ScenarioError, match=r":4: step 1: not a duration: '-10s'"):
        scenario.load(p)


QUIET = (
    "    name: quiet\n"
    + BOUND
    + "      - quiet: {for: 60s, cluster: provider, resource: widgets.example.org}\n"
    + CREATE_W1
    + "      - quiet: {for: 5s, cluster: provider, resource: widgets.example.org}\n"
)


def test_quiet_counts_the_konnector_writes_it_is_told_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Settled: a minute without writes to widgets passes; a new object is synced (written) at
    # once, which the second quiet step catches and names.
    assert cli.main(["run", str(_write(tmp_path, QUIET)), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [s["outcome"] for s in data["steps"]] == ["ok", "ok", "ok", "failed"]
    detail = data["steps"][3]["detail"]
    assert "at most 0 allowed" in detail and "to provider widgets.example.org" in detail


def test_a_reader_that_stops_early_ends_the_run_quietly() -> None:
    """`kbsim run ... | head`: no traceback, the status of a command killed by SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as after `head -0`
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "kbsim.cli",
                "run",
                "examples/scenarios/happy-path/scenario.yaml",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr.decode()
    assert proc.stderr == b""
