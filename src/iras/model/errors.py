"""Why a classifier cannot be built: raised at start-up, with what to change."""

from __future__ import annotations

from iras import extras


class ModelError(Exception):
    """The classifier cannot be built as configured."""


class UnknownModel(ModelError):
    """`IRAS_MODEL` names neither a built-in model nor a model folder or file."""


class ModelWeightsMissing(ModelError):
    """The model's weights are not on this machine."""


class ModelPackageMissing(ModelError):
    """A package of the `worker` extra (the weights, an engine, numpy) is not installed."""


def require_model_packages() -> None:
    """Raise `ModelPackageMissing` unless the `worker` extra is installed.

    The model's commands call it before they import the model, whose first imports
    (numpy, then an engine) would otherwise fail with a traceback instead of one line
    that says `pip install 'iras[worker]'`.
    """
    problem = extras.check("the model", "worker")
    if problem is not None:
        raise ModelPackageMissing(problem)
