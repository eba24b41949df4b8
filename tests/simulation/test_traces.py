"""Trace files load or say which line is wrong and why; generators are seeded and ascending."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from iras.simulation import traces


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.txt"
    path.write_text(text)
    return path


def test_a_trace_file_loads_skipping_blank_lines_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "# from the grader\n0\n0.5\n\n0.5\n  2.25  \n")
    assert traces.load(path) == [0.0, 0.5, 0.5, 2.25]  # equal times are allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0\n1\nabc\n", r"trace\.txt line 3: 'abc' is not a number of seconds"),
        ("0\n-1\n", r"line 2: '-1' is negative; arrival times are >= 0"),
        ("0\n5\n4.5\n", r"line 3: '4.5' comes before the time above it \(5\); .* ascending"),
        ("1\nnan\n", r"line 2: 'nan' is not a finite number of seconds"),
        ("inf\n", r"line 1: 'inf' is not a finite number"),
        ("", r"trace\.txt holds no arrival times"),
        ("# only a comment\n\n", r"holds no arrival times"),
    ],
    ids=["not-a-float", "negative", "descending", "nan", "inf", "empty", "only-comments"],
)
def test_a_bad_trace_says_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(traces.TraceError, match=message):
        traces.load(write(tmp_path, text))


def test_a_missing_or_binary_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(traces.TraceError, match=r"cannot read trace .*nothing\.txt"):
        traces.load(tmp_path / "nothing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(traces.TraceError, match="not UTF-8"):
        traces.load(binary)


@pytest.mark.parametrize("name", sorted(traces.GENERATORS))
def test_each_generator_is_seeded_ascending_and_small(name: str) -> None:
    first = traces.generate(name, 1)
    assert traces.generate(name, 1) == first  # the same seed, the same trace
    assert traces.generate(name, 2) != first
    assert all(a <= b for a, b in itertools.pairwise(first))
    assert first[0] >= 0 and 0 < len(first) < 150_000


@pytest.mark.parametrize(
    ("name", "images", "duration_s"),
    [
        ("burst", 150 * 60 + 28 * 60, 60 + 28 * 60),  # 150/s for 60 s, then 1/s for 28 min
        ("trickle", 30 * 60, 30 * 60),  # 1/s for 30 min
        ("diurnal", 3600 * 30.5, 3600),  # mean rate 1 + 59/2 over an hour
        ("course", 300, 601),  # 3 x 100 within a second, 5 min apart: exactly 300
    ],
)
def test_generators_have_their_documented_shape(
    name: str, images: float, duration_s: float
) -> None:
    times = traces.generate(name, 1)
    assert len(times) == pytest.approx(images, rel=0.05)
    assert times[-1] == pytest.approx(duration_s, rel=0.02)


def test_the_course_sends_100_within_a_second_three_times() -> None:
    times = traces.generate("course", 3)
    for start_s in (0.0, 300.0, 600.0):
        assert sum(start_s <= t < start_s + 1 for t in times) == 100


def test_spikes_rise_far_above_the_base() -> None:
    times = traces.generate("spikes", 1)
    per_second = [0] * 1801
    for t in times:
        per_second[int(t)] += 1
    assert max(per_second) >= 30  # a spike: 40-80/s
    assert sorted(per_second)[len(per_second) // 2] <= 3  # the base: ~1/s


def test_an_unknown_generator_names_the_known_ones() -> None:
    with pytest.raises(traces.TraceError, match="choose one of burst, diurnal"):
        traces.generate("tsunami", 1)
