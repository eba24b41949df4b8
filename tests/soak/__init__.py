"""Load with faults: uploads through a real `iras serve` while a worker is SIGKILLed, the
gateway is restarted and the AWS endpoint goes away, counted as a client sees them.

`client` is the uploading client (what it retries, and its books), `gateway` the
restartable `iras serve --endpoint-url` process, `run` the plan of faults and its report.
Used by the suite's short run (`tests/web/test_soak_faults.py`) and by the long one
(`benchmarks/soak_faults.py`).
"""
