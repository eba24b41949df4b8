"""The scripted server's fixtures (`tests.aws.lean.scripted`), for every test here."""

from tests.aws.lean.scripted import http_session, scripted

__all__ = ["http_session", "scripted"]
