"""`iras bench`: drive a gateway (or the bare model) with images and measure it.

Pure figures live apart from I/O: `stats` (percentiles), `stages` (each latency split by
stage from the results' timings), `procstat` (CPU per process from /proc text), `labels`
(top-1 against a labels CSV) and `report` (the report and its renderings). `load` drives
a gateway (each answer's timings ride on `iras.client.gateway.Answer`), `model_only` the
in-process model, `serve_process` starts and stops `iras serve`, `plot` draws the charts.
"""
