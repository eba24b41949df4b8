"""No credential, account id or machine path in anything that is, or is about to be, committed.

Credentials reach IRAS only through the standard AWS chain (DESIGN.md); a key pasted into
a test or a README, an account number in an ARN, or a path from one developer's machine
would leak or break on the next machine. The scan covers every file git tracks or would
add (`git ls-files --cached --others --exclude-standard`), text files only, as they are in
the working tree.

The embedded AWS's dummy credentials (`iras.local_aws`) are not key-shaped, so they need
no exception. The allow-list below is the only one; keep it that short. Tests that need
the embedded AWS's account id should read it from a queue URL or ARN the server returns,
not write it down.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Matches that look like leaks but are not: the all-zero account of a made-up SQS URL,
#: and the home of the `iras` user the container images create (Dockerfile.*).
ALLOWED = frozenset({"000000000000", "/home/iras"})

#: What a leak looks like. The patterns are written so that this file does not match them.
PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(
        r"(?i)secret_?(?:access_?)?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
    ),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----"),
    "AWS account id": re.compile(r"(?<![\w.+-])(\d{12})(?![\w+-])"),
    "machine path": re.compile(
        r"(?<![\w.~-])(/(?:home|Users)/[A-Za-z0-9._-]+|/(?:root|work)/)|[A-Za-z]:\\Users\\"
    ),
}


def committed_files() -> list[Path]:
    """Tracked files and untracked ones not ignored, as they are on disk."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"not a git checkout: {error}")
    paths = (ROOT / name for name in listing.decode().split("\0") if name)
    return sorted({path for path in paths if path.is_file()})


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL in its first 8 KiB)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def findings(text: str) -> list[tuple[str, str]]:
    """(kind, what matched) for each suspicious string in `text` not on the allow-list."""
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if value not in ALLOWED:
                found.append((kind, value))
    return found


def test_repository_holds_no_credentials_account_ids_or_machine_paths() -> None:
    problems = []
    for path in committed_files():
        text = text_of(path)
        if text is None:
            continue
        for line_number, line in enumerate(text.splitlines(), start=1):
            for kind, value in findings(line):
                problems.append(f"{path.relative_to(ROOT)}:{line_number}: {kind}: {value!r}")
    assert not problems, "remove or make relative:\n" + "\n".join(problems)


def test_scan_sees_the_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in committed_files()}
    assert {"README.md", "pyproject.toml", "src/iras/config/settings.py"} <= names


# Examples are assembled at run time so that this file itself stays clean.
KEY_ID = "AKIA" + "Q" * 16
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "A" * 10
ACCOUNT = "4" * 12


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"aws_access_key_id = {KEY_ID}", "AWS access key id"),
        (f"AWS_SECRET_ACCESS_KEY={SECRET}", "AWS secret access key"),
        (f'"SecretAccessKey": "{SECRET}"', "AWS secret access key"),
        ("-----BEGIN " + "RSA PRIVATE KEY-----", "private key"),
        ("-----BEGIN " + "PRIVATE KEY-----", "private key"),
        (f"arn:aws:iam::{ACCOUNT}:role/iras-app-tier", "AWS account id"),
        (f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/iras-requests", "AWS account id"),
        ("open('/" + "home/alice/photos/cat.jpg')", "machine path"),
        ("cd /" + "Users/bob/iras", "machine path"),
        ("see /" + "work/main/README.md", "machine path"),
        ("cache in /" + "root/.cache", "machine path"),
    ],
)
def test_scan_finds(line: str, kind: str) -> None:
    assert kind in {found_kind for found_kind, _ in findings(line)}


@pytest.mark.parametrize(
    "line",
    [
        'AWS_SECRET_ACCESS_KEY = "iras-local"',  # the embedded AWS's dummy credentials
        'os.environ["AWS_ACCESS_KEY_ID"] = "testing"',
        "https://sqs.eu-central-1.amazonaws.com/000000000000/replies",
        "arn:aws:sqs:${Region}:${AccountId}:${RequestQueue}",
        "timestamp_ms = 1700000000000",  # 13 digits: not an account id
        "https://example.com/work/items and ~/photos and ./home/page",
        "sha256: 3f2a9c0d1e4b5a6978c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2",
    ],
)
def test_scan_lets_pass(line: str) -> None:
    assert findings(line) == []
