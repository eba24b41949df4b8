"""IRAS: Image Recognition as a Service.

A FastAPI gateway stores uploads in S3 and queues requests on SQS; app-tier workers
classify them in batches; an autoscaler sizes the worker fleet. See the README.
"""

__version__ = "0.1.0"
