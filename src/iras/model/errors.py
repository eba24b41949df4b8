"""Why a classifier cannot be built: raised at start-up, with what to change."""

from __future__ import annotations


class ModelError(Exception):
    """The classifier cannot be built as configured."""


class UnknownModel(ModelError):
    """`IRAS_MODEL_NAME` names no model IRAS knows."""


class ModelWeightsMissing(ModelError):
    """The model's weights are not on this machine."""
