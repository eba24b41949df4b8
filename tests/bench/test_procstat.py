"""CPU by role from /proc text: parsing, roles, and the books kept across observations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iras.bench.procstat import (
    CpuTracker,
    ProcStat,
    Sample,
    parse_cmdline,
    parse_stat,
    read_tree,
    role_of,
)


def stat_line(
    pid: int,
    comm: str,
    ppid: int,
    utime: int,
    stime: int,
    cutime: int = 0,
    cstime: int = 0,
    start: int = 1000,
) -> str:
    # Fields 1..22 of proc(5); the ones not used here are zeros.
    middle = ["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime), str(cutime), str(cstime)]
    rest = ["20", "0", "1", "0", str(start)] + ["0"] * 30
    return f"{pid} ({comm}) " + " ".join(middle + rest) + "\n"


def test_parse_stat_reads_the_cpu_fields() -> None:
    stat = parse_stat(stat_line(42, "python", 7, utime=100, stime=20, cutime=5, cstime=1))
    assert stat == ProcStat(
        pid=42, comm="python", ppid=7, cpu_ticks=120, children_ticks=6, start_ticks=1000
    )


def test_parse_stat_survives_a_command_name_with_spaces_and_parentheses() -> None:
    stat = parse_stat(stat_line(9, "a) (b c", 1, utime=3, stime=4))
    assert (stat.pid, stat.comm, stat.ppid, stat.cpu_ticks) == (9, "a) (b c", 1, 7)


def test_parse_stat_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="not a /proc"):
        parse_stat("hello")


def test_this_process_parses() -> None:
    stat = parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert stat.pid == os.getpid() and stat.ppid == os.getppid()


@pytest.mark.parametrize(
    ("argv", "root", "role"),
    [
        (["/venv/bin/python", "/venv/bin/iras", "serve", "--port", "8000"], True, "gateway"),
        (["python", "-m", "iras", "serve"], False, "gateway"),
        (["python", "-m", "iras.worker"], False, "worker"),
        (["/venv/bin/python", "/venv/bin/iras-worker"], False, "worker"),
        (["python", "-m", "moto.server", "-p", "4566"], False, "aws"),
        (["/venv/bin/moto_server"], False, "aws"),
        (["python", "-m", "iras.local_aws"], False, "aws"),
        (["sleep", "10"], False, "other"),
        ([], False, "other"),  # a zombie has no cmdline
        (["anything"], True, "gateway"),  # the measured root is the gateway
    ],
)
def test_roles_from_the_command_line(argv: list[str], root: bool, role: str) -> None:
    assert role_of(argv, root=root) == role


def test_parse_cmdline_splits_on_nul() -> None:
    assert parse_cmdline(b"python\0-m\0iras.worker\0") == ["python", "-m", "iras.worker"]


def sample(pid: int, role: str, ppid: int, cpu: int, children: int = 0, start: int = 1) -> Sample:
    return Sample(ProcStat(pid, "p", ppid, cpu, children, start), role)


def test_only_what_was_spent_between_observations_counts() -> None:
    tracker = CpuTracker()
    tracker.observe([sample(1, "gateway", 0, 500), sample(2, "worker", 1, 300)])
    tracker.observe([sample(1, "gateway", 0, 560), sample(2, "worker", 1, 400)])
    assert tracker.ticks_by_role() == {"gateway": 60, "worker": 100, "aws": 0, "other": 0}
    assert tracker.seconds_by_role(100)["worker"] == 1.0


def test_a_worker_born_during_the_run_counts_whole() -> None:
    tracker = CpuTracker()
    tracker.observe([sample(1, "gateway", 0, 500)])
    # Seen first between fork and exec, still with serve's command line:
    tracker.observe([sample(1, "gateway", 0, 510), sample(3, "gateway", 1, 0)])
    tracker.observe([sample(1, "gateway", 0, 520), sample(3, "worker", 1, 250)])
    assert tracker.ticks_by_role() == {"gateway": 20, "worker": 250, "aws": 0, "other": 0}


def test_a_worker_that_exited_is_completed_from_its_parents_reaped_time() -> None:
    tracker = CpuTracker()
    tracker.observe([sample(1, "gateway", 0, 500, children=40), sample(2, "worker", 1, 300)])
    tracker.observe([sample(1, "gateway", 0, 510, children=40), sample(2, "worker", 1, 350)])
    # The worker spent 30 more ticks after this sighting (380 in all), then was reaped;
    # another worker was born and reaped between sightings (70 ticks).
    tracker.observe([sample(1, "gateway", 0, 530, children=40 + 380 + 70)])
    # worker: 350 - 300 seen, plus 450 reaped - 350 counted at its last sighting
    assert tracker.ticks_by_role() == {"gateway": 30, "worker": 150, "aws": 0, "other": 0}


def test_a_reused_pid_is_another_process() -> None:
    tracker = CpuTracker()
    tracker.observe([sample(1, "gateway", 0, 100), sample(2, "worker", 1, 300, start=5)])
    tracker.observe([sample(1, "gateway", 0, 100, children=320), sample(2, "other", 1, 7, start=9)])
    # The first pid 2 (300 at the start, 320 when reaped) spent 20; the new one 7.
    assert tracker.ticks_by_role() == {"gateway": 0, "worker": 20, "aws": 0, "other": 7}


def test_read_tree_from_a_proc_folder(tmp_path: Path) -> None:
    processes = {
        10: (stat_line(10, "iras", 1, 50, 5), b"python\0-m\0iras\0serve\0"),
        11: (stat_line(11, "python", 10, 30, 3), b"python\0-m\0iras.worker\0"),
        12: (stat_line(12, "python", 11, 1, 1), b"sh\0-c\0true\0"),
        13: (stat_line(13, "other", 1, 9, 9), b"unrelated\0"),
    }
    for pid, (stat, cmdline) in processes.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat)
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)
    (tmp_path / "self").mkdir()  # not a pid: ignored
    tree = {s.stat.pid: s.role for s in read_tree(10, proc=tmp_path)}
    assert tree == {10: "gateway", 11: "worker", 12: "other"}
    with pytest.raises(ProcessLookupError, match="no process 99"):
        read_tree(99, proc=tmp_path)


def test_read_tree_finds_a_real_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = {s.stat.pid: s.role for s in read_tree(os.getpid())}
        assert tree[os.getpid()] == "gateway"
        assert tree[child.pid] == "other"
    finally:
        child.kill()
        child.wait()
