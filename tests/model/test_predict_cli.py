"""`iras predict`: `name:label` lines on stdout, errors on stderr, exit 1 if any failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from iras.cli import main
from iras.model import Classifier, Prediction
from iras.model.labels import imagenet_labels
from tests.model.images import encode, pattern


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRAS_INFERENCE_THREADS", "1")
    for name in (
        "IRAS_MODEL",
        "IRAS_MODEL_NAME",
        "IRAS_MODEL_WEIGHTS",
        "IRAS_BATCH_SIZE",
        "IRAS_TOP_K",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder of three images in three formats, and a file that is not an image."""
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.photo.jpg").write_bytes(encode(pattern(), "JPEG"))
    (folder / "b.PNG").write_bytes(encode(pattern().rotate(90, expand=True), "PNG"))
    (folder / "a.webp").write_bytes(
        encode(pattern().transpose(Image.Transpose.FLIP_LEFT_RIGHT), "WEBP")
    )
    (folder / "notes.txt").write_text("not an image, and not picked from a folder")
    return folder


def _labels_of(classifier: Classifier, paths: list[Path]) -> list[str]:
    """Labels classified in one batch, as `iras predict` batches them (a label near a tie
    could differ between batch sizes in the last bits of the arithmetic)."""
    outcomes = classifier.classify([path.read_bytes() for path in paths])
    return [outcome.label for outcome in outcomes if isinstance(outcome, Prediction)]


def test_prints_name_label_lines_in_order(
    images: Path, classifier: Classifier, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [images / "cat.photo.jpg", images / "b.PNG", images / "a.webp"]

    code = main(["predict", "--batch-size", "2", *map(str, files)])

    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    labels = _labels_of(classifier, files[:2]) + _labels_of(classifier, files[2:])
    expected = [f"{path.stem}:{label}" for path, label in zip(files, labels, strict=True)]
    assert out.splitlines() == expected
    assert expected[0].startswith("cat.photo:")


def test_a_directory_means_its_image_files_sorted(
    images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(images)]) == 0
    names = [line.split(":")[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["a", "b", "cat.photo"]


def test_a_corrupt_file_is_reported_and_fails_the_run(
    images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = images / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 truncated")

    code = main(["predict", str(corrupt), str(images / "a.webp"), str(images / "gone.png")])

    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == ["a"]
    err_lines = err.splitlines()
    assert err_lines[0].startswith("broken: error: ")
    assert err_lines[1].startswith("gone: error: cannot read")


def test_json_lines_carry_top_k_and_errors(
    images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (images / "empty.gif").write_bytes(b"")

    code = main(["predict", "--json", "--top-k", "3", str(images)])

    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [record["name"] for record in records] == ["a", "b", "cat.photo", "empty"]
    for record in records[:3]:
        assert record["model"] == "efficientnet_lite0"
        assert len(record["top"]) == 3 and record["label"] == record["top"][0]["label"]
        assert record["label"] in imagenet_labels()
    assert records[3]["error"].startswith("empty file")


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["--model", "alexnet"], "must be a built-in model (efficientnet_lite0, resnet18)"),
        (["--model", "resnet18", "--weights", "/no/such.pth"], "IRAS_MODEL_WEIGHTS"),
    ],
)
def test_a_model_that_cannot_load_exits_2(
    images: Path, argv: list[str], phrase: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", *argv, str(images)]) == 2
    assert phrase in capsys.readouterr().err


def test_a_folder_without_images_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(tmp_path)]) == 1
    assert "no .jpg/.jpeg/.png/.webp/.gif files" in capsys.readouterr().err
