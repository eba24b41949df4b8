"""The app tier: `iras-worker` processes that classify queued requests in batches."""

from iras.worker.worker import ExitReason, Worker

__all__ = ["ExitReason", "Worker"]
