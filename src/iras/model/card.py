"""A model's card: what its ONNX graph takes and gives, read from `model.json` (or `.toml`).

The card is the contract between a team's network and IRAS's preprocessing: the input
layout (NHWC or NCHW), dtype (uint8 bytes, or float32 on 0..1 pixels with an optional
per-channel mean and std), the crop size and the short side it is resized to first, the
resampling filter, whether the output is logits (IRAS applies a softmax) or
probabilities, and a name and version that every result carries. For example:

    {"name": "defects", "version": "3", "layout": "NCHW", "dtype": "float32",
     "size": 224, "resize": 256, "mean": [0.485, 0.456, 0.406],
     "std": [0.229, 0.224, 0.225], "output": "logits"}

Optional fields: `resample` ("bilinear", the default and torchvision's, or "bicubic"),
`input_name` and `output_name` (needed only when the graph has several outputs).

Parsing is pure and strict: an unknown field (a typo such as `meen` would otherwise be
ignored and the model quietly fed unnormalised pixels) or a value of the wrong kind is
refused with the field, what it may be and what was found. `check_against_graph` then
holds the card against the graph itself (`GraphSignature`, read from the ONNX Runtime
session), so a mismatch stops a worker at start-up rather than mislabelling images.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from iras.model.errors import ModelError

Layout = Literal["NHWC", "NCHW"]
Dtype = Literal["uint8", "float32"]
OutputKind = Literal["logits", "probabilities"]
Resample = Literal["bilinear", "bicubic"]

#: What a name or version may be: they become S3 keys (`models/<name>/<version>.json`)
#: and travel in every result.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Crop sizes accepted: anything a network takes and a worker can hold a batch of.
MIN_SIZE, MAX_SIZE = 8, 4096
#: ONNX Runtime's spelling of each card dtype.
ONNX_TYPES: dict[str, str] = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}

_REQUIRED = ("name", "version", "layout", "dtype", "size", "resize", "output")
_OPTIONAL = ("mean", "std", "resample", "input_name", "output_name")


class CardError(ModelError):
    """A card that is malformed, or that does not describe its graph or labels."""


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What one model's graph takes and gives (see the module docstring)."""

    name: str
    version: str
    layout: Layout
    dtype: Dtype
    size: int
    resize: int
    output: OutputKind
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    resample: Resample = "bilinear"
    input_name: str | None = None
    output_name: str | None = None

    @property
    def channel_axis(self) -> int:
        return 3 if self.layout == "NHWC" else 1

    def summary(self, labels_count: int) -> dict[str, Any]:
        """The model as `GET /v1/models` shows it: name, version, labels, input."""
        return {
            "name": self.name,
            "version": self.version,
            "labels": labels_count,
            "output": self.output,
            "input": {"layout": self.layout, "dtype": self.dtype, "size": self.size},
        }


def read_card(path: Path) -> ModelCard:
    """The card in `path`, JSON or (by its `.toml` suffix) TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"cannot read the model card {path}: {exc.strerror or exc}") from None
    try:
        data: object = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
    if not isinstance(data, Mapping):
        raise CardError(f"{path}: a card is an object of fields, found {type(data).__name__}")
    return parse_card(data, source=str(path))


def parse_card(data: Mapping[str, Any], *, source: str = "model card") -> ModelCard:
    """A validated card from its fields; `source` names it in errors."""
    fields = _Fields(data, source)
    fields.check_known()
    layout = cast(Layout, fields.choice("layout", ("NHWC", "NCHW")))
    dtype = cast(Dtype, fields.choice("dtype", ("uint8", "float32")))
    size = fields.integer("size", MIN_SIZE, MAX_SIZE)
    resize = fields.integer("resize", size, MAX_SIZE * 2, below="at least size")
    mean, std = fields.triple("mean"), fields.triple("std", positive=True)
    if (mean is None) != (std is None):
        given, missing = ("mean", "std") if std is None else ("std", "mean")
        raise CardError(
            f"{source}: {given!r} is given but {missing!r} is not: give both or neither"
        )
    if dtype == "uint8" and mean is not None:
        raise CardError(
            f"{source}: 'mean' and 'std' apply to float32 inputs (0-1 pixels), but 'dtype' is "
            "'uint8': a uint8 graph normalises inside; drop them or make the input float32"
        )
    return ModelCard(
        name=fields.name("name"),
        version=fields.name("version"),
        layout=layout,
        dtype=dtype,
        size=size,
        resize=resize,
        output=cast(OutputKind, fields.choice("output", ("logits", "probabilities"))),
        mean=mean,
        std=std,
        resample=cast(Resample, fields.choice("resample", ("bilinear", "bicubic"), "bilinear")),
        input_name=fields.optional_text("input_name"),
        output_name=fields.optional_text("output_name"),
    )


@dataclass(frozen=True, slots=True)
class _Fields:
    data: Mapping[str, Any]
    source: str

    def check_known(self) -> None:
        unknown = sorted(set(self.data) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            known = ", ".join((*_REQUIRED, *_OPTIONAL))
            raise CardError(
                f"{self.source}: unknown field(s) {', '.join(unknown)} (known: {known})"
            )
        missing = [name for name in _REQUIRED if name not in self.data]
        if missing:
            raise CardError(f"{self.source}: missing field(s) {', '.join(missing)}")

    def fail(self, name: str, expected: str) -> CardError:
        return CardError(f"{self.source}: {name!r} must be {expected}, found {self.data[name]!r}")

    def name(self, name: str) -> str:
        value = self.data[name]
        if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
            raise self.fail(name, "1-64 letters, digits, '.', '_' or '-' (a string)")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> str:
        if name not in self.data and default is not None:
            return default
        value = self.data[name]
        if value not in allowed:
            raise self.fail(name, " or ".join(repr(option) for option in allowed))
        return str(value)

    def integer(self, name: str, low: int, high: int, *, below: str | None = None) -> int:
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(
                name, f"an integer from {low} to {high}" + (f" ({below})" if below else "")
            )
        return value

    def triple(self, name: str, *, positive: bool = False) -> tuple[float, float, float] | None:
        value = self.data.get(name)
        if value is None:
            return None
        kind = "3 positive numbers" if positive else "3 numbers"
        if not isinstance(value, list | tuple) or len(value) != 3:
            raise self.fail(name, f"{kind} (R, G, B, on 0-1 pixels) or null")
        if not all(_finite(x) and (not positive or x > 0) for x in value):
            raise self.fail(name, f"{kind} (R, G, B, on 0-1 pixels) or null")
        return (float(value[0]), float(value[1]), float(value[2]))

    def optional_text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(name, "a tensor name of the graph (a string)")
        return value


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the card against its graph -------------------------------------------------------

Dimension = int | str | None
"""A static size, a symbolic one (`"batch"`), or unknown: ONNX Runtime's shapes."""


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output of a graph: its name, ONNX Runtime type and shape."""

    name: str
    type: str
    shape: tuple[Dimension, ...]


@dataclass(frozen=True, slots=True)
class GraphSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Bound:
    """The tensors a checked card feeds and reads."""

    input_name: str
    output_name: str
    output_width: int | None  # None: dynamic in the graph, to be measured by a run


def check_against_graph(card: ModelCard, labels_count: int, graph: GraphSignature) -> Bound:
    """The card's input and output in `graph`, or a `CardError` naming the field that does
    not fit and what the graph has: names, dtype, rank, the channel axis where the layout
    says, size x size (or dynamic), and an output as wide as the labels."""
    where = f"model {card.name!r}"
    source = _pick(card.input_name, graph.inputs, "input_name", "input", where)
    if source.type != ONNX_TYPES[card.dtype]:
        raise CardError(
            f"{where}: 'dtype' is {card.dtype!r} but the graph's input {source.name!r} is "
            f"{source.type}"
        )
    if len(source.shape) != 4:
        raise CardError(
            f"{where}: the graph's input {source.name!r} has shape {_shown(source.shape)}; "
            f"'layout' {card.layout!r} needs 4 axes"
        )
    spatial = (1, 2) if card.layout == "NHWC" else (2, 3)
    if not _fits(source.shape[card.channel_axis], 3):
        raise CardError(
            f"{where}: 'layout' is {card.layout!r} (3 channels on axis {card.channel_axis}) but "
            f"the graph's input {source.name!r} has shape {_shown(source.shape)}"
        )
    if not all(_fits(source.shape[axis], card.size) for axis in spatial):
        raise CardError(
            f"{where}: 'size' is {card.size} but the graph's input {source.name!r} has shape "
            f"{_shown(source.shape)} ({card.layout})"
        )
    sink = _pick(card.output_name, graph.outputs, "output_name", "output", where)
    if len(sink.shape) != 2:
        raise CardError(
            f"{where}: the graph's output {sink.name!r} has shape {_shown(sink.shape)}; IRAS "
            "reads a batch x classes output"
        )
    width = sink.shape[1] if isinstance(sink.shape[1], int) else None
    if width is not None:
        check_width(card, labels_count, width, sink.name)
    return Bound(source.name, sink.name, width)


def check_width(card: ModelCard, labels_count: int, width: int, output: str) -> None:
    if width != labels_count:
        raise CardError(
            f"model {card.name!r}: the labels file has {labels_count} labels but the graph's "
            f"output {output!r} has {width} classes: one label per class, in output order"
        )


def _pick(
    wanted: str | None, tensors: Sequence[TensorSpec], field_name: str, kind: str, where: str
) -> TensorSpec:
    names = ", ".join(repr(t.name) for t in tensors) or "none"
    if wanted is not None:
        for tensor in tensors:
            if tensor.name == wanted:
                return tensor
        raise CardError(
            f"{where}: {field_name!r} is {wanted!r} but the graph's {kind}s are {names}"
        )
    if len(tensors) != 1:
        raise CardError(
            f"{where}: the graph has {len(tensors)} {kind}s ({names}): name the one to use "
            f"with {field_name!r}"
        )
    return tensors[0]


def _fits(dimension: Dimension, wanted: int) -> bool:
    return not isinstance(dimension, int) or dimension == wanted


def _shown(shape: Sequence[Dimension]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
