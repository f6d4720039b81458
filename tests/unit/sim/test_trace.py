"""Record and replay (kbcore.runtime.trace, `kbsim replay`): a recorded konnector run replays through the
kernel with no divergence, and a trace that does not match the kernel is caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kbcore.errors import ApiError
from kbcore.runtime import trace
from kbcore.sync.instance import plan_instance
from kbsim import cli, scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "examples" / "scenarios"


def _record(name: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    # Through JSON, as a trace file would hold it.
    result = scenario.run(
        scenario.load(SCENARIOS / name / "scenario.yaml"),
        recorder=lambda r: records.append(json.loads(json.dumps(r))),
    )
    assert result.passed, result.summary()
    return records


def _replay(record: dict[str, Any]) -> trace.Divergence | None:
    return trace.replay(record, planner=plan_instance)


@pytest.mark.parametrize(
    ("name", "instances"),
    [
        ("happy-path", True),
        ("related-resources", True),  # its copies follow Widgets (kbcore.control.related T1)
        ("unbind-teardown", True),
        ("orphan", True),
        ("conflict-fail", True),
    ],
)
def test_a_recorded_run_replays_with_no_divergence(name: str, instances: bool) -> None:
    records = _record(name)
    kinds = {r["key"][0] for r in records}
    assert {"connection", "binding", "engage"} <= kinds
    assert ("instance" in kinds) == instances
    assert any(r["effects"] for r in records), "some records carry reads and requests"
    for r in records:
        assert _replay(r) is None


def test_a_changed_answer_is_reported_as_a_divergence() -> None:
    records = _record("quickstart")
    # The first instance record whose provider copy was created: pretend the API server had
    # refused the create with a 409; the kernel then plans a different outcome.
    target = next(
        r
        for r in records
        if r["key"][0] == "instance"
        and any(e[0]["$t"] == "Send" and e[0]["action"]["$t"] == "Create" for e in r["effects"])
    )
    for effect in target["effects"]:
        if effect[0]["$t"] == "Send" and effect[0]["action"]["$t"] == "Create":
            effect[1] = trace.encode(ApiError(409, "AlreadyExists", "exists"))
            break
    d = _replay(target)
    assert d is not None
    assert d.key.startswith("instance widgets.example.org")
    assert "\n  verdict: null -> " in d.describe()


def test_changed_state_is_reported_where_the_kernel_reads_it() -> None:
    records = _record("quickstart")
    target = next(r for r in records if r["key"][0] == "connection" and r["effects"])
    # The cached Connection's spec changed: the kernel asks for other things than recorded.
    for call in target["state"]:
        if call[0] == "cached_get" and call[2] is not None:
            call[2] = None
            break
    d = _replay(target)
    assert d is not None
    assert d.key == "connection demo-provider"


def test_kbsim_replay_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _record("quickstart")
    good = tmp_path / "trace.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli.main(["replay", str(good)]) == 0
    assert f"{len(records)} records replayed" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    broken = [dict(r) for r in records]
    i = next(i for i, r in enumerate(broken) if r["key"][0] == "binding" and r["effects"])
    broken[i] = {**broken[i], "outcome": {**broken[i]["outcome"], "requeue_after": 12345.0}}
    bad.write_text("".join(json.dumps(r) + "\n" for r in broken))
    assert cli.main(["replay", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"bad.jsonl:{i + 1}" in out and "outcome differs" in out
    assert "\n  requeue_after: 12345.0 -> " in out  # the field, not two whole outcomes

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"format": 1, "key": ["connection", "x"]}\nnot json\n')
    assert cli.main(["replay", str(garbage)]) == 2
    assert "garbage.jsonl:1: not a trace record" in capsys.readouterr().err
