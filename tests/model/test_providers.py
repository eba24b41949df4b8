"""Execution providers: the list is parsed and checked, the selection keeps what this
onnxruntime has in the requested order, and a session that asked for a GPU it cannot
have runs on the CPU, saying so, with the providers its log names.

This machine has no GPU: the fallback is the path exercised for real, on onnxruntime's
CPU build; the selection is checked with made-up lists of available providers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from iras.config import Settings
from iras.model.providers import (
    CPU,
    ProviderError,
    Selection,
    fallback_note,
    parse_providers,
    select_providers,
)

CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", (CPU,)),  # nothing asked: the CPU alone
        ("cpu", (CPU,)),
        ("cuda", (CUDA, CPU)),  # the CPU appended as the fallback
        ("cuda,cpu", (CUDA, CPU)),
        (" TensorRT , CUDA ,, cpu ", (TRT, CUDA, CPU)),  # short names in any case, blanks
        ("trt,cuda", (TRT, CUDA, CPU)),
        ("cudaexecutionprovider", (CUDA, CPU)),  # onnxruntime's name in any case
        ("CPUExecutionProvider", (CPU,)),
        ("cuda,cuda,CUDAExecutionProvider", (CUDA, CPU)),  # repeats dropped
        ("QNNExecutionProvider", ("QNNExecutionProvider", CPU)),  # a provider not in the table
        (["cuda", "cpu"], (CUDA, CPU)),  # a sequence, as Settings(...) may be given
    ],
)
def test_the_list_is_onnxruntime_names_in_order_with_the_cpu_last(
    value: str | list[str], expected: tuple[str, ...]
) -> None:
    assert parse_providers(value) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("cuda,gpu", "unknown execution provider 'gpu'"),
        ("CUDA Provider", "unknown execution provider 'CUDA Provider'"),
        ("cpu,cuda", "lists CUDAExecutionProvider after the CPU provider"),
    ],
)
def test_a_wrong_list_is_refused_with_what_to_write(value: str, says: str) -> None:
    with pytest.raises(ProviderError, match=says):
        parse_providers(value)


def test_the_setting_reads_the_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().execution_providers == (CPU,)
    monkeypatch.setenv("IRAS_EXECUTION_PROVIDERS", "tensorrt,cuda")
    assert Settings().execution_providers == (TRT, CUDA, CPU)
    monkeypatch.setenv("IRAS_EXECUTION_PROVIDERS", "cuda,gpu")
    with pytest.raises(ValidationError, match="IRAS_EXECUTION_PROVIDERS"):
        Settings()


@pytest.mark.parametrize(
    ("requested", "available", "chosen", "unavailable"),
    [
        # a CPU build (this machine's: it also lists Azure): CUDA left out
        ((CUDA, CPU), ("AzureExecutionProvider", CPU), (CPU,), (CUDA,)),
        # a GPU build: everything asked for, in the order asked, not the build's order
        ((TRT, CUDA, CPU), (CPU, CUDA, TRT), (TRT, CUDA, CPU), ()),
        # TensorRT missing, CUDA there
        ((TRT, CUDA, CPU), (CUDA, CPU), (CUDA, CPU), (TRT,)),
        # a build that forgets to list the CPU still gets it (every build has it)
        ((CUDA,), (CUDA,), (CUDA, CPU), ()),
        # short names are accepted here too
        (("cuda",), (CPU,), (CPU,), (CUDA,)),
    ],
)
def test_the_selection_keeps_what_the_build_has_in_the_requested_order(
    requested: tuple[str, ...],
    available: tuple[str, ...],
    chosen: tuple[str, ...],
    unavailable: tuple[str, ...],
) -> None:
    selection = select_providers(requested, available)
    assert (selection.chosen, selection.unavailable) == (chosen, unavailable)


def test_the_note_says_which_provider_is_missing_and_why() -> None:
    selection = Selection(requested=(TRT, CUDA, CPU), chosen=(CUDA, CPU), unavailable=(TRT,))
    assert fallback_note(selection, [CUDA, CPU]) is not None
    # CUDA in the build but dropped by the session: its libraries did not load
    note = fallback_note(selection, [CPU])
    assert note is not None
    assert f"{TRT} is not in this onnxruntime build" in note
    assert f"{CUDA} failed to start" in note
    assert note.endswith(
        "(for a GPU, install onnxruntime-gpu with the CUDA libraries and an NVIDIA driver)"
    )
    assert fallback_note(Selection((CUDA, CPU), (CUDA, CPU), ()), [CUDA, CPU]) is None


def tiny_model(path: Path) -> Path:
    """An ONNX graph with the engine's input and output names: softmax over 3 pixels."""
    from onnx import TensorProto, helper, save

    from iras.model.onnx_engine import INPUT_NAME, OUTPUT_NAME

    graph = helper.make_graph(
        [
            helper.make_node("Cast", [INPUT_NAME], ["values"], to=TensorProto.FLOAT),
            helper.make_node("Softmax", ["values"], [OUTPUT_NAME], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["n", 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_a_session_asking_for_cuda_here_runs_on_the_cpu_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnxruntime as ort

    from iras.model.onnx_engine import OnnxEngine

    assert CUDA not in ort.get_available_providers(), "this test expects a CPU-only onnxruntime"
    path = tiny_model(tmp_path / "tiny.onnx")
    with caplog.at_level(logging.INFO, logger="iras.model.onnx_engine"):
        engine = OnnxEngine(path, threads=1, lone_threads=2, providers=("cuda", "cpu"))

    assert engine.providers == (CPU,)
    pixels = np.array([[0, 0, 0], [1, 2, 3]], dtype=np.uint8)
    values = np.exp(pixels.astype(np.float64))
    expected = values / values.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(engine.run(pixels), expected, rtol=1e-6)
    np.testing.assert_allclose(engine.run(pixels[1:]), expected[1:], rtol=1e-6)  # lone session

    # Two sessions (batches, and a lone image on more threads): one line of each per session.
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    got = ", ".join(engine.providers)  # what the session reports is what the log says
    assert infos == [
        f"ONNX Runtime session on tiny.onnx, threads 1: runs on {got}",
        f"ONNX Runtime session on tiny.onnx, threads 2: runs on {got}",
    ]
    assert len(warnings) == 2
    for warning in warnings:
        assert f"{CUDA} is not in this onnxruntime build" in warning
        assert warning.startswith(f"execution providers {CUDA}, {CPU} were asked for, but ")
        assert f"falls back to {got}" in warning


def test_the_default_asks_for_the_cpu_and_warns_of_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from iras.model.onnx_engine import OnnxEngine

    path = tiny_model(tmp_path / "tiny.onnx")
    with caplog.at_level(logging.INFO, logger="iras.model.onnx_engine"):
        engine = OnnxEngine(path, threads=1)
    assert engine.providers == (CPU,)
    assert [r.levelno for r in caplog.records] == [logging.INFO]  # one session, no warning
