"""The README's configuration table, generated from `Settings` so the two never drift.

`python -m iras.config.table` prints it; a test checks the README holds exactly this.
"""

from __future__ import annotations

from pydantic.fields import FieldInfo

from iras.config import Settings

START_MARKER = "<!-- settings:start -->"
END_MARKER = "<!-- settings:end -->"


def markdown_table() -> str:
    """One row per setting: variable, default, description."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `{_variables(name, field)}` | {_default(field)} | {field.description} |")
    return "\n".join(rows)


def _variables(name: str, field: FieldInfo) -> str:
    aliases = getattr(field.validation_alias, "choices", None)
    if aliases:
        return "` / `".join(str(alias) for alias in aliases)
    return f"IRAS_{name.upper()}"


def _default(field: FieldInfo) -> str:
    if field.default is None or field.default == ():
        return "unset"
    if isinstance(field.default, tuple):  # a list setting, as it is written: a,b
        return f"`{','.join(str(item) for item in field.default)}`"
    return f"`{field.default}`"


if __name__ == "__main__":
    print(markdown_table())
