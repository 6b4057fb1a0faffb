"""docs/api-compatibility.md is what tests/sdk/compat.py generates from the pinned SDKs
and this tagd: a route added or removed, or an SDK bumped, without regenerating the
table fails here."""

from pathlib import Path

import compat

DOC = Path(__file__).resolve().parents[2] / "docs" / "api-compatibility.md"


def test_the_compatibility_table_is_up_to_date(tagd):
    expected = compat.render(tagd.endpoint, tagd.project_id)
    assert DOC.read_text() == expected, (
        "docs/api-compatibility.md is out of date; regenerate it against a running tagd:\n"
        "  tests/sdk/compat.py http://127.0.0.1:PORT PROJECT_ID > docs/api-compatibility.md\n"
        "(with the suite's virtualenv: .venv-sdk/bin/python)"
    )
