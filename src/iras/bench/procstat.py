"""CPU time of a process tree by role, from Linux's /proc/<pid>/stat and cmdline.

The pure part parses the text and keeps the books; `read_tree` is the only function
that reads /proc. A tree is observed several times during a run (not only before and
after) because the autoscaler starts and stops workers mid-run: a worker that exits is
counted up to its last sighting, and what it spent after that (or a worker born and gone
between two sightings) is recovered from its parent's `cutime + cstime`, which the
kernel increases by a child's whole CPU time when the parent reaps it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Roles in a serve tree, in report order.
ROLES = ("gateway", "worker", "aws", "other")


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of /proc/<pid>/stat that CPU accounting needs (times in clock ticks)."""

    pid: int
    comm: str
    ppid: int
    cpu_ticks: int  # utime + stime: this process's own threads
    children_ticks: int  # cutime + cstime: children it has reaped (and theirs)
    start_ticks: int  # starttime since boot: tells a reused pid apart


def parse_stat(text: str) -> ProcStat:
    """Parse one /proc/<pid>/stat line; `comm` may hold spaces and parentheses."""
    head, close, rest = text.rpartition(")")
    pid_text, open_, comm = head.partition(" (")
    fields = rest.split()
    if not close or not open_ or len(fields) < 20:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    # fields[0] is field 3 (state) of proc(5): field n is fields[n - 3].
    return ProcStat(
        pid=int(pid_text),
        comm=comm,
        ppid=int(fields[1]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        children_ticks=int(fields[13]) + int(fields[14]),
        start_ticks=int(fields[19]),
    )


def parse_cmdline(raw: bytes) -> list[str]:
    """/proc/<pid>/cmdline: NUL-separated arguments (empty for a zombie or kernel thread)."""
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def role_of(argv: Sequence[str], *, root: bool = False) -> str:
    """`worker` (iras-worker, python -m iras.worker), `aws` (moto or the embedded AWS
    in its own process), `gateway` (iras serve, or the root of the measured tree), else
    `other`."""
    names = [arg.rsplit("/", 1)[-1] for arg in argv]
    if "iras-worker" in names or "iras.worker" in argv:
        return "worker"
    if any("moto" in arg or "local_aws" in arg for arg in argv):
        return "aws"
    if root or ("serve" in argv and "iras" in names) or "uvicorn" in names:
        return "gateway"
    return "other"


@dataclass(frozen=True, slots=True)
class Sample:
    """One process as seen at one moment."""

    stat: ProcStat
    role: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.stat.pid, self.stat.start_ticks)


@dataclass
class _Seen:
    role: str
    ppid: int
    first_ticks: int  # at the first observation, or 0 for a process born since
    last_ticks: int
    first_children_ticks: int
    last_children_ticks: int


class CpuTracker:
    """CPU ticks each role spent between the first observation and the last."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int], _Seen] = {}
        self._alive: set[tuple[int, int]] = set()
        self._observations = 0

    def observe(self, tree: Iterable[Sample]) -> None:
        first = self._observations == 0
        self._observations += 1
        self._alive = set()
        for sample in tree:
            stat = sample.stat
            seen = self._seen.get(sample.key)
            if seen is None:
                base, base_children = (stat.cpu_ticks, stat.children_ticks) if first else (0, 0)
                seen = _Seen(sample.role, stat.ppid, base, 0, base_children, 0)
                self._seen[sample.key] = seen
            # The latest role wins: between fork and exec a worker still shows serve's cmdline.
            seen.role = sample.role
            seen.last_ticks = stat.cpu_ticks
            seen.last_children_ticks = stat.children_ticks
            self._alive.add(sample.key)

    def ticks_by_role(self) -> dict[str, int]:
        """Ticks per role: every process's own, plus the reaped children's unseen rest."""
        totals: Counter[str] = Counter({role: 0 for role in ROLES})
        for seen in self._seen.values():
            totals[seen.role] += seen.last_ticks - seen.first_ticks
        for key in self._alive:
            role, unseen = self._unseen_children(key)
            totals[role] += unseen
        return dict(totals)

    def seconds_by_role(self, ticks_per_s: float) -> dict[str, float]:
        return {role: ticks / ticks_per_s for role, ticks in self.ticks_by_role().items()}

    def _unseen_children(self, parent_key: tuple[int, int]) -> tuple[str, int]:
        """CPU of `parent_key`'s reaped children not counted at their last sighting, and
        the role it goes to (that of most of the children that exited)."""
        parent = self._seen[parent_key]
        reaped = parent.last_children_ticks - parent.first_children_ticks
        exited = [
            seen
            for key, seen in self._seen.items()
            if key not in self._alive and seen.ppid == parent_key[0]
        ]
        counted = sum(seen.last_ticks + seen.last_children_ticks for seen in exited)
        roles = Counter(seen.role for seen in exited)
        role = roles.most_common(1)[0][0] if roles else "other"
        return role, max(0, reaped - counted)


def read_tree(root_pid: int, proc: Path = Path("/proc")) -> list[Sample]:
    """The process `root_pid` and all its descendants, each with its role.

    Raises ProcessLookupError when `root_pid` is not running.
    """
    stats: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError):
            continue  # gone since listed, or not ours to read
    if root_pid not in stats:
        raise ProcessLookupError(f"no process {root_pid} (is it running?)")
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    tree: list[Sample] = []
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        try:
            argv = parse_cmdline((proc / str(pid) / "cmdline").read_bytes())
        except OSError:
            argv = []
        tree.append(Sample(stats[pid], role_of(argv, root=pid == root_pid)))
        pending.extend(children.get(pid, []))
    return tree
