"""JSON output names record types as the spec does, and every schema id has one style."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from cli_helpers import DATA_IMAGES, TIMEOUT, XSMIG

from xsmig_daemon.commands.diff import DIFF_SCHEMA
from xsmig_daemon.commands.verify import VERIFY_SCHEMA
from xsmig_daemon.export.manifest import SCHEMA as EXPORT_SCHEMA
from xsmig_daemon.image.summary import INSPECT_SCHEMA, RECORD_SCHEMA
from xsmig_daemon.service.lu_hook import MANIFEST_SCHEMA

#: The record type names of the migration stream spec (docs/xenstore-migration.md).
SPEC_NAMES = {
    "END", "GLOBAL_DATA", "CONNECTION_DATA", "WATCH_DATA", "TRANSACTION_DATA", "NODE_DATA",
    "GLOBAL_QUOTA_DATA", "DOMAIN_DATA", "WATCH_DATA_EXTENDED",
}  # fmt: skip


def records(image: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(XSMIG), "inspect", "--records", "--json", str(image)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_record_types_are_the_spec_names() -> None:
    rows = records(DATA_IMAGES / "domains.img")
    assert {row["type"] for row in rows} <= SPEC_NAMES
    connections = [row for row in rows if row["type"] == "CONNECTION_DATA"]
    assert [row["conn_type"] for row in connections] == [
        "ring", "socket", "ring", "ring", "socket"
    ]  # fmt: skip


def test_every_schema_id_has_one_style() -> None:
    schemas = [
        INSPECT_SCHEMA, RECORD_SCHEMA, VERIFY_SCHEMA, DIFF_SCHEMA, EXPORT_SCHEMA, MANIFEST_SCHEMA
    ]  # fmt: skip
    for schema in schemas:
        assert re.fullmatch(r"xsmig\.[a-z][a-z-]*/[0-9]+", schema), schema
    assert len(set(schemas)) == len(schemas)
