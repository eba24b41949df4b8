"""Every setting a worker reads is marked shared with its gateway or its own.

What the gateway passes to the workers it launches follows from the marks
(`iras.infra.app_tier.worker_environment`), so a setting a worker reads without a mark
would silently keep its default on every autoscaled instance. This test reads the code
an `iras-worker` process runs, as `ast` sees it (the modules it imports, from its entry
point on), and finds each `settings.<name>` and `self._settings.<name>` there.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from pathlib import Path

from iras.config import Settings
from iras.config.settings import worker_role, worker_settings

SRC = Path(__file__).resolve().parents[2] / "src"
#: Where an `iras-worker` process starts.
WORKER_ENTRY_POINTS = ("iras.worker.__main__", "iras.cli.worker")
#: The worker's own code, read whole. From any other module (the gateway's, the
#: provisioning's) a worker borrows a few names, and only those are worker code, with the
#: definitions of the same module they use.
WORKER_PACKAGES = (
    "iras.worker",
    "iras.cli.worker",
    "iras.model",
    "iras.aws",
    "iras.config",
    "iras.messages",
    "iras.runtime",
    "iras.extras",
)
#: Names that hold a `Settings` in the code (every function takes it as `settings`).
SETTINGS_NAMES = {"settings", "_settings"}

#: Names borrowed from a module; None: the whole module.
Borrowed = set[str] | None


def module_path(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def parse(module: str) -> ast.Module:
    path = module_path(module)
    assert path is not None, module
    return ast.parse(path.read_text(), filename=str(path))


def is_worker_package(module: str) -> bool:
    return module == "iras" or any(
        module == package or module.startswith(package + ".") for package in WORKER_PACKAGES
    )


def imports(module: str, tree: ast.Module) -> Iterator[tuple[str, Borrowed]]:
    """The `iras` modules `module` imports, each with the names it takes (None: all)."""
    path = module_path(module)
    package = module if path and path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = {alias.name for alias in node.names}
            submodules = {name for name in names if module_path(f"{base}.{name}")}
            yield from ((f"{base}.{name}", None) for name in submodules)
            if names - submodules:
                yield base, names - submodules


def worker_modules() -> tuple[dict[str, ast.Module], dict[str, Borrowed]]:
    """What an `iras-worker` process runs: the worker's own modules it imports, parsed,
    and the other modules it borrows names from."""
    own: dict[str, ast.Module] = {}
    borrowed: dict[str, Borrowed] = {}
    todo = list(WORKER_ENTRY_POINTS)
    while todo:
        module = todo.pop()
        if module in own:
            continue
        own[module] = parse(module)
        for imported, names in imports(module, own[module]):
            if not imported.startswith("iras") or module_path(imported) is None:
                continue
            if is_worker_package(imported):
                todo.append(imported)
            elif names is None or borrowed.get(imported, set()) is None:
                borrowed[imported] = None
            else:
                borrowed[imported] = (borrowed.get(imported) or set()) | names
    return own, borrowed


def top_level_definitions(tree: ast.Module) -> dict[str, ast.stmt]:
    """A module's functions, classes and assigned names, by name."""
    defined: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined[node.name] = node
        elif isinstance(node, ast.Assign):
            defined.update((t.id, node) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined[node.target.id] = node
    return defined


def borrowed_code(tree: ast.Module, names: set[str]) -> list[ast.stmt]:
    """The top-level definitions `names`, and those of the same module they use."""
    defined = top_level_definitions(tree)
    wanted: set[str] = set()
    todo = [name for name in names if name in defined]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            used = {node.id for node in ast.walk(defined[name]) if isinstance(node, ast.Name)}
            todo.extend(used & defined.keys())
    return [defined[name] for name in wanted]


def settings_read(nodes: Sequence[ast.AST]) -> Iterator[str]:
    """The attributes read of a name in `SETTINGS_NAMES` (`settings.x`, `self._settings.x`)."""
    for root in nodes:
        for node in ast.walk(root):
            if not isinstance(node, ast.Attribute):
                continue
            holder = node.value
            name = holder.id if isinstance(holder, ast.Name) else getattr(holder, "attr", None)
            if name in SETTINGS_NAMES:
                yield node.attr


def read_by_workers() -> dict[str, set[str]]:
    """Setting -> the modules whose worker code reads it."""
    own, borrowed = worker_modules()
    code: dict[str, Sequence[ast.AST]] = {name: [tree] for name, tree in own.items()}
    for module, names in borrowed.items():
        tree = parse(module)
        code[module] = [tree] if names is None else borrowed_code(tree, names)
    reads: dict[str, set[str]] = {}
    for module, nodes in code.items():
        for name in settings_read(nodes):
            for setting in DERIVED.get(name, (name,)):  # a property reads its fields
                reads.setdefault(setting, set()).add(module)
    return reads


#: `Settings` properties, and the fields each is made of.
DERIVED = {"records_bucket": ("state_bucket", "output_bucket")}


def test_derived_settings_are_properties_of_their_fields() -> None:
    for name, fields in DERIVED.items():
        assert isinstance(getattr(Settings, name), property), name
        assert set(fields) <= set(Settings.model_fields), name
    assert Settings(state_bucket="s").records_bucket == "s"
    assert Settings().records_bucket == Settings().output_bucket


def test_the_scan_sees_the_worker_code() -> None:
    """The scan finds what is known to be read, in the modules known to read it: a scan
    that found nothing would pass the test below for ever."""
    own, borrowed = worker_modules()
    assert {"iras.worker.worker", "iras.worker.publishing", "iras.messages"} <= set(own)
    assert borrowed["iras.infra.provision"] == {"find_queue_url"}
    assert not {"iras.web.app", "iras.scaler.controller"} & (set(own) | set(borrowed))
    reads = read_by_workers()
    assert reads["write_name_objects"] == {"iras.messages"}  # `result_objects`, the worker's
    assert reads["results_prefix"] == {"iras.messages"}
    assert {"region", "instance_id", "model_weights", "batch_size"} <= set(reads)
    assert "message_retention_s" not in reads  # provisioning's, not find_queue_url's


def test_every_setting_a_worker_reads_is_marked() -> None:
    reads = read_by_workers()
    assert set(reads) <= set(Settings.model_fields), "not settings: " + ", ".join(
        sorted(set(reads) - set(Settings.model_fields))
    )
    unmarked = {name: sorted(where) for name, where in reads.items() if worker_role(name) is None}
    assert unmarked == {}, (
        "mark these settings json_schema_extra=WORKER_SHARED (the gateway passes its value "
        "to the workers it launches) or WORKER_OWN (the worker's machine sets it)"
    )


def test_shared_and_own_are_apart() -> None:
    shared, own = set(worker_settings("shared")), set(worker_settings("own"))
    assert shared and own and not shared & own
    assert {"write_name_objects", "region", "endpoint_url", "idle_exit_s"} <= shared
    assert {"instance_id", "worker_name", "inference_threads", "model_weights"} <= own
