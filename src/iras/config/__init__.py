"""Configuration: every setting an IRAS process reads, from `IRAS_*` environment variables.

- `settings`: `Settings`, the pydantic-settings model; each field documents itself.
- `loading`: `load_settings(**overrides)` for command-line programs (bad values exit 2).
- `table`: the README's configuration table, generated from `Settings`.
"""

from iras.config.settings import SQS_QUEUE_NAME_MAX, Settings

__all__ = ["SQS_QUEUE_NAME_MAX", "Settings"]
