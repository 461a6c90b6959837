"""The control protocol without sockets: request parsing and line splitting."""

from __future__ import annotations

import json

import pytest

from xsmig_daemon.service.control_protocol import (
    LineBuffer,
    LineTooLongError,
    RequestError,
    encode_response,
    parse_request,
)


def test_snapshot_request_with_arguments() -> None:
    request = parse_request(
        b'{"id": "a1", "command": "snapshot", "output": "/x/y.img", "force": true, '
        b'"target": "xen-4.17", "deadline": 30}'
    )
    assert request.command == "snapshot"
    assert request.request_id == "a1"
    assert request.args == {"output": "/x/y.img", "force": True, "target": "xen-4.17"}
    assert request.deadline == 30.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"hello", "request is not JSON"),
        (b"\xff\xfe", "request is not JSON"),
        (b"[1, 2]", "request must be a JSON object"),
        (b'{"command": "explode"}', "command: expected one of status, reload, snapshot"),
        (b'{"command": 3}', "command: expected one of"),
        (b'{"command": "status", "verbose": true}', "verbose: unknown argument for status"),
        (b'{"command": "snapshot", "output": "rel.img"}', "output: expected an absolute path"),
        (b'{"command": "snapshot", "force": "yes"}', "force: expected true or false"),
        (b'{"command": "snapshot", "target": "xen-9"}', "target: expected one of spec"),
        (b'{"command": "live-update", "timeout": 0}', "timeout: expected an integer"),
        (b'{"command": "status", "deadline": -1}', "deadline: expected seconds"),
        (b'{"command": "status", "deadline": true}', "deadline: expected seconds"),
    ],
)
def test_bad_requests(line: bytes, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(line)
    assert str(caught.value).startswith(message)


def test_error_keeps_the_request_id() -> None:
    with pytest.raises(RequestError) as caught:
        parse_request(b'{"id": 42, "command": "nope"}')
    assert caught.value.request_id == 42


def test_responses_are_one_json_line() -> None:
    ok = encode_response(7, {"a": 1})
    failed = encode_response(None, error="bad\nthing")
    assert ok.endswith(b"\n") and ok.count(b"\n") == 1
    assert failed.count(b"\n") == 1
    assert json.loads(ok) == {"id": 7, "ok": True, "result": {"a": 1}}
    assert json.loads(failed) == {"id": None, "ok": False, "error": "bad\nthing"}


def test_line_buffer_splits_and_skips_blank_lines() -> None:
    buffer = LineBuffer(limit=20)
    buffer.feed(b'{"a"')
    assert list(buffer.lines()) == []
    assert buffer.partial
    buffer.feed(b": 1}\n\n  \n{}\n{")
    assert list(buffer.lines()) == [b'{"a": 1}', b"{}"]
    assert buffer.partial


def test_line_buffer_refuses_a_long_line_even_without_newline() -> None:
    buffer = LineBuffer(limit=8)
    buffer.feed(b"x" * 9)
    with pytest.raises(LineTooLongError):
        list(buffer.lines())
