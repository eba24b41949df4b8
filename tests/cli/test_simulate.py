"""`iras simulate` end to end: JSON with every figure, a table, a chart, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from iras import extras
from iras.cli import main
from iras.simulation import POLICY_NAMES
from tests.test_extras import run_without

#: The keys the issue requires of every policy's object (more may be added, none renamed).
REQUIRED = {
    "policy", "images", "p50_s", "p95_s", "max_s", "instance_seconds", "busy_seconds",
    "cost", "cost_per_1000", "peak_workers", "scale_events",
}  # fmt: skip


def iras(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iras", *args], capture_output=True, text=True, timeout=60
    )


def test_json_has_every_figure_for_every_policy() -> None:
    done = iras("simulate", "--generate", "course", "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [row["policy"] for row in report["policies"]] == list(POLICY_NAMES)
    for row in report["policies"]:
        assert row.keys() >= REQUIRED, row["policy"]
        assert row["images"] == report["trace"]["images"] == 300
        assert row["busy_seconds"] == pytest.approx(300 / 15)
        assert row["instance_seconds"] >= row["busy_seconds"]
        assert row["p50_s"] <= row["p95_s"] <= row["max_s"]
        # t3.medium: $0.0416 an hour
        assert row["cost"] == pytest.approx(row["instance_seconds"] * 0.0416 / 3600, abs=1e-6)
    assert report["parameters"]["price_per_hour"] == 0.0416


def test_the_same_arguments_give_the_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--generate", "spikes", "--seed", "2", "--json"]
    outputs = []
    for _ in range(2):
        assert main(args) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


def test_a_table_of_the_chosen_policies_from_a_trace_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("".join(f"{i * 0.5}\n" for i in range(40)))
    code = main(
        ["simulate", "--trace", str(trace), "--policy", "oracle,iras", "--boot-s", "5",
         "--price-per-hour", "1"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("policy "))
    rows = [line.split()[0] for line in lines[header + 1 : header + 3]]
    assert rows == ["oracle", "iras"]  # in the order asked
    assert f"{trace}, 40 images over 20 s; boot 5 s" in out and "$1/h" in out


def test_a_chart_is_drawn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "simulate.png"
    code = main(["simulate", "--generate", "course", "--policy", "iras,keda", "--plot", str(chart)])
    assert code == 0
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "chart written to" in capsys.readouterr().err


def test_a_bad_trace_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    trace = tmp_path / "bad.txt"
    trace.write_text("0.5\n1.5\noops\n")
    done = iras("simulate", "--trace", str(trace))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"iras simulate: {trace} line 3: 'oops' is not a number of seconds"
    )
    assert done.stdout == ""


def test_it_runs_on_the_base_install(tmp_path: Path) -> None:
    blocked = (*extras.MODULES["local"], *extras.BENCH_MODULES)  # no model, AWS or charts
    command = [sys.executable, "-m", "iras", "simulate", "--generate", "course", "--json"]
    done = run_without(blocked, command, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["policies"]) == len(POLICY_NAMES)


def test_plot_without_matplotlib_says_which_extra(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "iras", "simulate", "--generate", "course", "--plot", "x.png"]
    done = run_without(("matplotlib",), command, tmp_path)
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "iras simulate: --plot needs matplotlib, not installed here: pip install 'iras[bench]'",
    )


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--generate", "burst", "--policy", "hpa"], "no policy 'hpa'"),
        (["--generate", "burst", "--worker-rate", "0"], "must be a finite number > 0"),
        (["--generate", "burst", "--trace", "t.txt"], "not allowed with argument"),
        ([], "one of the arguments --trace --generate is required"),
    ],
)
def test_bad_arguments_exit_2(
    args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", *args])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_the_batch_size_default_is_the_workers() -> None:
    from iras.cli import build_parser
    from iras.simulation.runs import DEFAULT_BATCH_SIZE

    args = build_parser().parse_args(["simulate", "--generate", "course"])
    assert args.batch_size == DEFAULT_BATCH_SIZE  # IRAS_BATCH_SIZE's default
