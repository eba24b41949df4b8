"""Which AWS operations each tier's code can make, found by reading the source.

The IAM policies in deploy/iam/ must grant exactly what the code calls. Running the code
cannot show that (moto checks no permissions), so this module reads it: every module of
`src/iras` is parsed with `ast`, each top-level function, class body and method becomes
a unit with the AWS operations it names, the units it refers to and the attribute names
it uses, and a tier's operations are those of every unit reachable from its entry
packages. A method counts once its class is reached and its name is used as an attribute
anywhere in the tier (`fleet.terminate(...)`), since which object an attribute belongs
to is beyond a static reading. Following units, not modules, matters: the web tier
imports `find_queue_url` from `iras.infra.provision` but must not inherit `create_bucket`.

The reading is deliberately strict. A client is recognised by the name it is held under,
with or without leading underscores, as `aws.s3` or `self._ec2`: botocore's full clients
as `s3`, `sqs`, `ec2`, `autoscaling`, whose methods are the services' operations; the interfaces of
`iras.aws.types` as `objects` (`ObjectStore`) and `messages` (`MessageQueue`), whose
methods each make one operation, named in `INTERFACES`. A method on such a client that
is not an operation (or an interface method), or a botocore operation name on any other
receiver, raises `UnknownAwsCall` instead of being skipped, so code that calls AWS in a
new way forces this reading, and the policies, to be updated. The modules that implement
the interfaces (`IMPLEMENTATIONS`) are not read: their calls are counted where the
interface is called, so a tier needs only the operations its code asks for.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
from botocore import xform_name

SRC = Path(__file__).resolve().parents[1] / "src"

#: The services IRAS talks to, each also the name its botocore client is held under.
SERVICES = ("s3", "sqs", "ec2", "autoscaling")

#: The interfaces of `iras.aws.types`, by the name their clients are held under: the
#: service, and the operation each method makes (whichever implementation makes it).
INTERFACES: dict[str, tuple[str, dict[str, str]]] = {
    "objects": (
        "s3",
        {
            "put": "PutObject",
            "get": "GetObject",
            "delete": "DeleteObject",
            "list_keys": "ListObjectsV2",
        },
    ),
    "messages": (
        "sqs",
        {
            "send_batch": "SendMessageBatch",
            "receive": "ReceiveMessage",
            "delete_batch": "DeleteMessageBatch",
            "change_visibility_batch": "ChangeMessageVisibilityBatch",
            "depth": "GetQueueAttributes",
        },
    ),
}

#: `AwsClients.objects_apart` is an `objects` on a connection pool of its own.
INTERFACES["objects_apart"] = INTERFACES["objects"]

#: Every name a client is held under; `iras.aws.AwsClients` has one field for each.
CLIENT_NAMES = (*INTERFACES, *SERVICES)

#: Client attributes that are not API operations: they make no call of their own.
NOT_OPERATIONS = frozenset({"get_paginator", "exceptions", "meta"})

#: The pseudo-unit holding a module's top-level statements (imports, constants).
MODULE_BODY = "<module>"


class UnknownAwsCall(AssertionError):
    """The source uses an AWS client in a way this reading does not understand."""


@dataclass(frozen=True, slots=True, order=True)
class AwsCall:
    """One AWS operation named in the source: service, PascalCase operation, where."""

    service: str
    operation: str
    where: str


@dataclass(slots=True)
class Unit:
    """A top-level function, a class body, a method or a module's body, and what it uses."""

    calls: list[AwsCall] = field(default_factory=list)
    refs: set[tuple[str, str]] = field(default_factory=set)
    attrs: set[str] = field(default_factory=set)
    methods: list[str] = field(default_factory=list)  # of a class body: its method units


@functools.cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> PascalCase operation, from botocore's service model."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@functools.cache
def all_operation_names() -> frozenset[str]:
    return frozenset(name for service in SERVICES for name in operations(service))


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Packages that answer AWS calls instead of making them: the embedded AWS calls moto's
#: backends (`backend.put_object(...)`), which are not clients and need no policy.
SERVER_SIDE = ("iras.local_aws",)
#: The implementations of the interfaces: what they call is counted at the callers'.
IMPLEMENTATIONS = ("iras.aws.lean", "iras.aws.boto")


@functools.cache
def source_modules() -> dict[str, Path]:
    """Every module under src/iras that may call AWS, by dotted name."""
    modules = {module_name(path): path for path in sorted((SRC / "iras").rglob("*.py"))}
    return {
        name: path
        for name, path in modules.items()
        if not any(
            name == pkg or name.startswith(f"{pkg}.") for pkg in SERVER_SIDE + IMPLEMENTATIONS
        )
    }


def receiver_client(node: ast.expr) -> str | None:
    """The client `node` holds, judged by its name (`s3`, `aws.messages`, `self._ec2`): one
    of `CLIENT_NAMES`, or None."""
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    else:
        return None
    name = name.lstrip("_")
    return name if name in CLIENT_NAMES else None


def calls_in(tree: ast.AST, where: str) -> Iterator[AwsCall]:
    """The AWS calls named anywhere in `tree` (of file `where`); raises on any it cannot place."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from _paginated(node, where)
        if isinstance(node, ast.Attribute):
            yield from _operation(node, f"{where}:{node.lineno}")


def _paginated(call: ast.Call, where: str) -> Iterator[AwsCall]:
    """`client.get_paginator("describe_instances")` makes DescribeInstances calls."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "get_paginator"):
        return
    service = receiver_client(func.value)
    arg = call.args[0] if call.args else None
    if service not in SERVICES or not (
        isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    ):
        raise UnknownAwsCall(f"{where}:{call.lineno}: cannot read {ast.unparse(call)}")
    yield _resolved(service, arg.value, f"{where}:{call.lineno}")


def _operation(node: ast.Attribute, where: str) -> Iterator[AwsCall]:
    client = receiver_client(node.value)
    if client is None:
        if node.attr in all_operation_names():
            raise UnknownAwsCall(
                f"{where}: {ast.unparse(node)} looks like an AWS call on a client this reading "
                f"cannot name; hold clients as {'/'.join(CLIENT_NAMES)} (see tests/aws_calls.py)"
            )
        return
    if node.attr not in NOT_OPERATIONS:
        yield _resolved(client, node.attr, where)


def _resolved(client: str, method: str, where: str) -> AwsCall:
    if client in INTERFACES:
        service, methods = INTERFACES[client]
        operation = methods.get(method)
        if operation is None:
            raise UnknownAwsCall(
                f"{where}: {client}.{method} is not an {client} method known to INTERFACES"
            )
        return AwsCall(service, operation, where)
    operation = operations(client).get(method)
    if operation is None:
        raise UnknownAwsCall(f"{where}: {client}.{method} is not a {client} operation")
    return AwsCall(client, operation, where)


def _imports(tree: ast.Module, module: str, is_package: bool) -> dict[str, set[tuple[str, str]]]:
    """Local name -> (module, name) it was imported as, from imports anywhere in the file.

    A name imported as a module maps to (module, "") and stands for all of that module.
    """
    found: dict[str, set[tuple[str, str]]] = {}
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.setdefault(alias.asname or alias.name, set()).add((base, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.partition(".")[0]
                found.setdefault(local, set()).add((alias.name, ""))
    return found


@dataclass(frozen=True, slots=True)
class Parsed:
    """One module read: its units, and the names it imports."""

    units: dict[str, Unit]
    imports: dict[str, set[tuple[str, str]]]


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _split(tree: ast.Module) -> dict[str, ast.AST]:
    """Unit name -> its code: functions, class bodies without their methods, methods."""
    found: dict[str, ast.AST] = {}
    rest: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, _FUNCTIONS):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            body = [n for n in node.body if not isinstance(n, _FUNCTIONS)]
            found[node.name] = ast.Module(
                body=[*node.decorator_list, *node.bases, *body], type_ignores=[]
            )
            for method in node.body:
                if isinstance(method, _FUNCTIONS):
                    found[f"{node.name}.{method.name}"] = method
        else:
            rest.append(node)
    found[MODULE_BODY] = ast.Module(body=rest, type_ignores=[])
    return found


@functools.cache
def parse(module: str) -> Parsed:
    """The units of `module`, each with its AWS calls, references and attribute names."""
    path = source_modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = str(path.relative_to(SRC.parent))
    imports = _imports(tree, module, path.name == "__init__.py")
    code = _split(tree)
    found: dict[str, Unit] = {}
    for name, node in code.items():
        unit = Unit(calls=list(calls_in(node, where)))
        unit.methods = [m for m in code if m.startswith(f"{name}.")]
        for ref in ast.walk(node):
            if isinstance(ref, ast.Attribute):
                unit.attrs.add(ref.attr)
            elif isinstance(ref, ast.Name) and ref.id in code and ref.id != name:
                unit.refs.add((module, ref.id))
            elif isinstance(ref, ast.Name) and ref.id in imports:
                unit.refs.update(imports[ref.id])
        found[name] = unit
    return Parsed(found, imports)


def _targets(module: str, name: str) -> Iterator[tuple[str, str]]:
    """The units a reference (module, name) stands for; names outside src/iras: none.

    Reaching any unit of a module also reaches its body: importing runs it.
    """
    modules = source_modules()
    submodule = f"{module}.{name}" if name else module
    if submodule in modules:  # `import iras.x` or `from iras import x`: the whole module
        yield from ((submodule, unit) for unit in parse(submodule).units)
    elif module in modules:
        parsed = parse(module)
        yield (module, MODULE_BODY)
        if name in parsed.units:
            yield (module, name)
        for target in parsed.imports.get(name, ()):  # a re-export, as in a package's __init__
            yield from _targets(*target)


def _in_packages(module: str, packages: Iterable[str]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


class _Reach:
    """The walk over units from a tier's entry packages; methods wait for their name."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.calls: set[AwsCall] = set()
        self.attrs: set[str] = set()
        self.waiting: dict[str, list[tuple[str, str]]] = {}
        self.todo: list[tuple[str, str]] = []

    def run(self, entries: Iterable[tuple[str, str]]) -> set[AwsCall]:
        self.todo.extend(entries)
        while self.todo:
            key = self.todo.pop()
            if key not in self.seen:
                self.seen.add(key)
                self._visit(key[0], parse(key[0]).units[key[1]])
        return self.calls

    def _visit(self, module: str, unit: Unit) -> None:
        self.calls.update(unit.calls)
        for ref in unit.refs:
            self.todo.extend(_targets(*ref))
        for attr in unit.attrs - self.attrs:
            self.attrs.add(attr)
            self.todo.extend(self.waiting.pop(attr, []))
        for method in unit.methods:
            name = method.rpartition(".")[2]
            if name in self.attrs or name.startswith("__"):
                self.todo.append((module, method))
            else:
                self.waiting.setdefault(name, []).append((module, method))


def reachable_calls(entry_packages: Iterable[str]) -> list[AwsCall]:
    """Every AWS call of the units reachable from all units of `entry_packages`."""
    packages = tuple(entry_packages)
    entries = [
        (module, unit)
        for module in source_modules()
        if _in_packages(module, packages)
        for unit in parse(module).units
    ]
    return sorted(_Reach().run(entries))
