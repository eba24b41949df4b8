"""The app tier: `iras-worker` processes that classify queued requests in batches.

The pipeline is `iras.worker.worker.Worker`; this package imports nothing on its own so
that `python -m iras.worker` can install its signal handler before the heavy imports.
"""
