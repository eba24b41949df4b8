"""Execution providers: which onnxruntime back ends a session asks for, and what it got.

`IRAS_EXECUTION_PROVIDERS` is an ordered list (cuda before cpu: onnxruntime gives each
node of the graph to the first provider in the list that can run it). The CPU provider
always comes last, appended when missing, so a GPU worker whose CUDA libraries fail to
load still classifies, on its CPU, with a warning that says so.

Pure functions: the engine passes in what its onnxruntime reports
(`get_available_providers()`, a session's `get_providers()`), so the selection and the
fallback are tested here with any list, on a machine without a GPU. No onnxruntime
import: the settings validate the list with this module on the gateway too, which has no
model engines installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CPU = "CPUExecutionProvider"
SUFFIX = "ExecutionProvider"

#: Short names, as an operator writes them, to onnxruntime's names.
SHORT_NAMES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
}
_FULL_NAMES = {name.lower(): name for name in SHORT_NAMES.values()}


class ProviderError(ValueError):
    """An execution provider list that cannot be right (a misspelt name, CPU not last)."""


def parse_providers(value: str | Iterable[str]) -> tuple[str, ...]:
    """onnxruntime's names for `value` (comma-separated or a sequence), in order, CPU last.

    A short name (`cuda`) or onnxruntime's own name in any case (`cudaexecutionprovider`)
    is accepted; so is any other `...ExecutionProvider` name, as written, since
    onnxruntime builds carry providers no table here lists (it is then not available,
    and the session falls back, with a warning). Repeats are dropped. A provider after
    the CPU would never run: that is refused rather than reordered.
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in parts:
        name = provider_name(part)
        if name is not None and name not in names:
            names.append(name)
    if CPU in names and names[-1] != CPU:
        after = ", ".join(names[names.index(CPU) + 1 :])
        raise ProviderError(
            f"IRAS_EXECUTION_PROVIDERS lists {after} after the CPU provider, which takes "
            "every node it is offered: put the CPU last (or leave it out; it is appended)"
        )
    if CPU not in names:
        names.append(CPU)
    return tuple(names)


def provider_name(text: str) -> str | None:
    """onnxruntime's name for one entry of the list; None for an empty entry."""
    word = text.strip()
    if not word:
        return None
    known = SHORT_NAMES.get(word.lower()) or _FULL_NAMES.get(word.lower())
    if known is not None:
        return known
    if word.endswith(SUFFIX) and word[: -len(SUFFIX)].isalnum():
        return word
    short = ", ".join(sorted(SHORT_NAMES))
    raise ProviderError(
        f"unknown execution provider {word!r} in IRAS_EXECUTION_PROVIDERS: use one of "
        f"{short}, or onnxruntime's full name (`...ExecutionProvider`)"
    )


@dataclass(frozen=True)
class Selection:
    """What to ask onnxruntime for, out of what was requested and what it has."""

    requested: tuple[str, ...]
    chosen: tuple[str, ...]  # passed to InferenceSession, in the requested order
    unavailable: tuple[str, ...]  # requested, but not in this onnxruntime build


def select_providers(requested: Sequence[str], available: Iterable[str]) -> Selection:
    """The requested providers this onnxruntime has, in order, and those it lacks.

    Passing an absent provider to onnxruntime only makes it warn in its own words; the
    CPU provider is kept whatever the list of available ones says (every build has it).
    """
    has = set(available) | {CPU}
    wanted = parse_providers(requested)
    chosen = tuple(name for name in wanted if name in has)
    unavailable = tuple(name for name in wanted if name not in has)
    return Selection(requested=wanted, chosen=chosen, unavailable=unavailable)


def fallback_note(selection: Selection, got: Sequence[str]) -> str | None:
    """Why the session runs on fewer providers than requested; None when it got them all.

    A provider can be in the build and still fail to start (CUDA without its libraries
    or a driver): onnxruntime then drops it from the session, which is why the check is
    against what the session reports, not what was passed.
    """
    missing = [name for name in selection.requested if name not in got]
    if not missing:
        return None
    reasons = []
    for name in missing:
        if name in selection.unavailable:
            reasons.append(f"{name} is not in this onnxruntime build")
        else:
            reasons.append(f"{name} failed to start (see onnxruntime's log above)")
    return (
        f"{'; '.join(reasons)}: the session falls back to {', '.join(got) or 'nothing'} "
        "(for a GPU, install onnxruntime-gpu with the CUDA libraries and an NVIDIA driver)"
    )
