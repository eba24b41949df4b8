"""The web tier: the FastAPI gateway (`create_app`) and its live page."""

from iras.web.app import create_app

__all__ = ["create_app"]
