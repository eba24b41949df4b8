"""The AWS resources IRAS runs on, and the app-tier image: made, described, removed.

- `provision`: buckets and queues, created or brought in line idempotently.
- `launch_template`: the app-tier launch template `iras provision --fleet` writes.
- `auto_scaling`: the workers' Auto Scaling group, with `IRAS_FLEET=asg`.
- `app_tier`: what an app-tier instance is told at boot (its user data).
- `bake`: `python -m iras.infra.bake`, the model's ONNX export baked into an image.
- `teardown`: removing what `provision` made.
"""
