"""The model repository: what `IRAS_MODEL` (or `--model`) may name, resolved to an entry.

Accepted, in this order:

1. A built-in name, `efficientnet_lite0` (the default) or `resnet18`. Their cards are
   IRAS's (`iras.model.builtin`), their labels ImageNet's, and their ONNX is the export
   of their weights that IRAS caches (`iras.model.onnx_export`); `IRAS_MODEL_WEIGHTS`
   replaces the weights and `IRAS_MODEL_ENGINE=torch` runs them on PyTorch.
2. A folder holding `model.onnx`, a card (`model.json` or `model.toml`, see
   `iras.model.card`) and labels (`labels.txt`, one label per line in output order, or
   `labels.json`, a list of strings).
3. A `.onnx` file with its card and labels beside it, named after it: `foo.onnx`,
   `foo.json` (or `foo.toml`) and `foo.labels.txt` (or `foo.labels.json`).

Resolving reads the card and the labels, never the graph: it is pure file reading, cheap
enough for a gateway that only lists models. `iras.model.registry` loads the graph and
checks the card against it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from iras.model.builtin import BUILTIN_CARDS, DEFAULT_WEIGHTS_VERSION, IMAGENET_CLASSES
from iras.model.card import ModelCard, read_card
from iras.model.errors import ModelError, UnknownModel

CARD_NAMES = ("model.json", "model.toml")
LABEL_NAMES = ("labels.txt", "labels.json")
GRAPH_NAME = "model.onnx"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model of the repository: its card, labels and graph.

    A built-in entry has no `onnx` (its graph is the cached export of its weights) and no
    `labels` (ImageNet's, read when the classifier is built).
    """

    card: ModelCard
    onnx: Path | None = None
    labels: tuple[str, ...] | None = None

    @property
    def builtin(self) -> bool:
        return self.onnx is None

    @property
    def labels_count(self) -> int:
        return IMAGENET_CLASSES if self.labels is None else len(self.labels)


def resolve_model(reference: str, weights: Path | None = None) -> ModelEntry:
    """The entry `reference` names (see the module docstring), or a `ModelError` that says
    what was looked for. `weights` (IRAS_MODEL_WEIGHTS) applies to built-in models only."""
    card = BUILTIN_CARDS.get(reference)
    if card is not None:
        if weights is not None:
            card = _with_version(card, weights_version(weights))
        return ModelEntry(card)
    if weights is not None:
        raise ModelError(
            f"IRAS_MODEL_WEIGHTS ({weights}) replaces the weights of a built-in model "
            f"({', '.join(BUILTIN_CARDS)}); {reference!r} is not one: unset it"
        )
    path = Path(reference).expanduser()
    if path.is_dir():
        return _folder_entry(path)
    if path.suffix == ".onnx" and path.is_file():
        return _file_entry(path)
    known = ", ".join(BUILTIN_CARDS)
    raise UnknownModel(
        f"unknown model {reference!r}: IRAS_MODEL (or --model) must be a built-in model "
        f"({known}), a folder with {GRAPH_NAME}, a card and labels, or a .onnx file with "
        "its card and labels beside it (no such folder or file)"
    )


def weights_version(weights: Path) -> str:
    """A built-in model's version on other weights: their file's name, as a version may be."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", weights.stem).strip("-.") or "custom"
    return f"weights-{cleaned}"[:64]


def read_labels(path: Path) -> tuple[str, ...]:
    """Labels in output order: one per line (`.txt`), or a JSON list of strings."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"cannot read the labels file {path}: {exc.strerror or exc}") from None
    if path.suffix == ".json":
        try:
            labels = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise ModelError(f"{path}: labels must be a JSON list of non-empty strings")
    else:
        labels = [line.strip() for line in text.splitlines()]
        while labels and not labels[-1]:
            labels.pop()  # a file that ends in blank lines
        for number, label in enumerate(labels, start=1):
            if not label:
                raise ModelError(f"{path}: line {number} is empty: one label per line")
    if not labels:
        raise ModelError(f"{path}: no labels in it")
    return tuple(labels)


def _folder_entry(folder: Path) -> ModelEntry:
    graph = folder / GRAPH_NAME
    if not graph.is_file():
        raise ModelError(f"model folder {folder} has no {GRAPH_NAME}")
    card = _one_of(folder, CARD_NAMES, "a card")
    labels = _one_of(folder, LABEL_NAMES, "labels")
    return ModelEntry(read_card(card), graph, read_labels(labels))


def _file_entry(graph: Path) -> ModelEntry:
    stem = graph.with_suffix("").name
    card = _one_of(graph.parent, (f"{stem}.json", f"{stem}.toml"), f"a card for {graph.name}")
    labels_names = (f"{stem}.labels.txt", f"{stem}.labels.json")
    labels = _one_of(graph.parent, labels_names, f"labels for {graph.name}")
    return ModelEntry(read_card(card), graph, read_labels(labels))


def _one_of(folder: Path, names: tuple[str, ...], what: str) -> Path:
    found = [folder / name for name in names if (folder / name).is_file()]
    if len(found) != 1:
        listed = " or ".join(names)
        problem = "neither is there" if not found else "both are there: keep one"
        raise ModelError(f"{folder} needs {what}: {listed} ({problem})")
    return found[0]


def _with_version(card: ModelCard, version: str) -> ModelCard:
    return replace(card, version=version) if version != DEFAULT_WEIGHTS_VERSION else card
