"""The benchmark harness (`python -m tests.bench`) run for real at quick sizes, so it cannot rot:
a bench whose figures change shape, a row builder that no longer matches, or a broken JSON writer
fails here rather than on the day someone wants the numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench import __main__ as harness


def test_quick_run_prints_one_table_and_the_same_figures_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CPU, ring and handover benches run in one process; the table has the machine header,
    a row per measure with its same-run comparison and a verdict, and the JSON file holds the
    very figures and rows the table shows."""
    out = tmp_path / "bench.json"
    document = harness.main(["--quick", "--only", "wire,ringbuf,handover", "--json", str(out)])
    table = capsys.readouterr().out

    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    machine = document["machine"]
    assert machine["cores"] == os.cpu_count()
    assert f"{machine['cores']} cores" in table and machine["python"] in table
    assert list(document["benches"]) == ["wire", "ringbuf", "handover"]
    for name, bench in document["benches"].items():
        assert bench["status"] == "ok", (name, bench["reason"], bench["output"])
        assert bench["rows"], name
        assert bench["output"].strip(), f"{name}: its own table was not kept"
        for row in bench["rows"]:
            assert row["measure"] in table and row["beside"], row
            assert row["verdict"] in ("met", "MISSED", "-")
            if row["goal"]:
                assert row["verdict"] != "-", row
    wire = document["benches"]["wire"]["figures"]
    assert wire["build_pilive_us"] > 0 and wire["parse_sdk_us"] > wire["parse_floor_us"]
    handover = document["benches"]["handover"]["figures"]
    assert handover["handovers"] >= handover["rounds"]
    assert document["goals_missed"] == [
        r["measure"]
        for b in document["benches"].values()
        for r in b["rows"]
        if r["verdict"] == "MISSED"
    ]


def test_a_failing_bench_is_reported_and_the_rest_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bench that raises shows ERROR with its exception in the table and JSON, the next bench
    still runs, and the environment the failing bench changed (as the audio bench points HOME at
    its rig) is put back."""
    home = os.environ.get("HOME")

    def explode(module: ModuleType, quick: bool) -> dict[str, object]:
        os.environ["HOME"] = str(tmp_path)
        raise RuntimeError("rig would not start")

    broken = harness.Bench("broken", "tests.bench.bench_ringbuf", explode, harness.ringbuf_rows)
    monkeypatch.setitem(harness.BENCHES, "broken", broken)
    document = harness.main(["--quick", "--only", "broken,ringbuf"])
    table = capsys.readouterr().out

    assert os.environ.get("HOME") == home
    assert document["benches"]["broken"]["status"] == "error"
    assert "RuntimeError: rig would not start" in document["benches"]["broken"]["reason"]
    assert "ERROR: RuntimeError: rig would not start" in table
    assert document["benches"]["ringbuf"]["status"] == "ok"


def test_a_missed_goal_says_missed() -> None:
    """A figure outside its goal is printed as MISSED and listed, never hidden."""
    figures = {
        "rounds": 3,
        "handovers": 3,
        "gap_ms_min": 240.0,
        "gap_ms_median": 260.0,
        "gap_ms_max": 300.0,
        "input_bytes_lost": 640,
        "sessions_on_server": 1,
    }
    result = harness.BenchResult("handover", figures=figures)
    result.rows = harness.handover_rows(figures)
    info = harness.machine()
    table = harness.render(info, [result], quick=True)
    assert [r.verdict for r in result.rows] == ["MISSED", "MISSED"]
    assert table.count("MISSED") == 2 + 1  # both rows, and the summary line
    assert harness.report(info, [result], quick=True)["goals_missed"] == [
        r.measure for r in result.rows
    ]


def test_an_unknown_bench_name_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    """`--only` with a typo stops before running anything and names the bad name and the
    choices."""
    with pytest.raises(SystemExit) as exit_info:
        harness.main(["--only", "wire,ringbuff"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "'ringbuff'" in message and "wire" in message and "handover" in message
