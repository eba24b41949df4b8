"""What an operator sees of a request: structured logs, traces and per-stage metrics.

One request is followed across the gateway, the queue and a worker: its log lines carry
its ids (`iras.telemetry.logs`), its spans make one trace across both processes
(`iras.telemetry.tracing`, off unless the standard `OTEL_*` variables configure it), and
each stage's time reaches Prometheus (`iras.web.metrics`, `iras.worker.metrics`).
"""
