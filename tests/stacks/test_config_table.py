"""README.md's configuration table is the one `stacks.config` prints from its declarations
(with cdk.json's defaults), and cdk.json sets exactly the declared keys."""

import json
import subprocess
import sys

from stacks.application import REPO_ROOT, cdk_json_context
from stacks.config import markdown_table, options

BEGIN = "<!-- configuration table: python -m stacks.config --markdown -->\n"
END = "<!-- end of the configuration table -->"
FIX = "regenerate it: .venv/bin/python -m stacks.config --markdown, between the markers"


def readme_table() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    assert text.count(BEGIN) == 1, f"README.md has no single line {BEGIN!r}"
    assert text.count(END) == 1, f"README.md has no single line {END!r}"
    return text.split(BEGIN)[1].split(END)[0]


def test_the_readme_table_is_the_declared_one():
    assert readme_table() == markdown_table(cdk_json_context()), FIX


def test_cdk_json_sets_the_declared_keys_in_their_order():
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    assert [key for key in context if not key.startswith("@")] == list(options())


def test_the_table_says_what_an_empty_default_stands_for():
    table = markdown_table(cdk_json_context())
    assert '| `classify_reserved_concurrency` | `""`: derived, 10 |' in table
    assert '| `capacity_retry_minutes` | `""`: derived, 15 |' in table
    assert '| `alarm_email` | `""` (none) |' in table
    assert "| `confidence_threshold` | `0.75` | a number in (0, 1] |" in table


def test_the_command_prints_the_table():
    result = subprocess.run(
        [sys.executable, "-m", "stacks.config", "--markdown"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown_table(cdk_json_context())
