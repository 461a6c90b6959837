"""``xsmig convert IN OUT``: rewrite an image for another version, byte order or loader."""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO

from ..cli import EXIT_OK, EXIT_USAGE
from ..image.convert import ImageConverter
from ..image.decoder import Located
from ..image.encoder import RecordEncoder
from ..image.errors import ImageError
from ..image.profiles import Profile, get_profile
from ..image.records import Header
from ..image.validate import StreamValidator
from ..imagefile import atomic_output, check_writable_target, display_name
from ._common import TARGETS, ImageStream, fail, guarded, located_error, records_of

NAME = "convert"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        NAME,
        help="rewrite an image for another stream version, byte order or loader",
        description=(
            "Read IN, rewrite it for the target and write OUT atomically (a temporary file "
            "renamed into place; - writes to stdout). The output records are checked against "
            "the format rules and the target profile as they are written; an error names the "
            "input record. "
            "What the target cannot hold makes the command fail, naming it, unless --lossy is "
            "given: then it is dropped and listed on stderr. Exit 0 written, 1 failed, 2 usage."
        ),
    )
    parser.add_argument("input", metavar="IN", help="input image, or - for standard input")
    parser.add_argument("output", metavar="OUT", help="output image, or - for standard output")
    parser.add_argument(
        "--version",
        type=int,
        choices=(1, 2),
        help="stream version to write (default: the input's, if the target loads it)",
    )
    parser.add_argument(
        "--endian",
        choices=("little", "big"),
        help="byte order to write (default: little for xen-* targets, else the input's)",
    )
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default="spec",
        help="loader the output is meant for (default: spec)",
    )
    parser.add_argument(
        "--lossy", action="store_true", help="drop what the target cannot hold, and list it"
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(handler=guarded(NAME, run_guarded))


def usage_conflict(args: argparse.Namespace, profile: Profile) -> str | None:
    if args.version is not None and args.version not in profile.versions:
        return f"--target {profile.name} does not load version {args.version} streams"
    if args.endian == "big" and profile.little_endian_only:
        return f"--target {profile.name} loads little-endian streams only"
    return None


def target_header(args: argparse.Namespace, profile: Profile, source: Header) -> Header:
    version = args.version
    if version is None:
        version = source.version if source.version in profile.versions else max(profile.versions)
    if args.endian is None:
        big = False if profile.little_endian_only else source.big_endian
    else:
        big = args.endian == "big"
    return Header(version, big)


def run(args: argparse.Namespace) -> int:
    profile = get_profile(args.target)
    conflict = usage_conflict(args, profile)
    if conflict is not None:
        print(f"xsmig {NAME}: {conflict}", file=sys.stderr)
        return EXIT_USAGE
    check_writable_target(args.output, force=args.force)
    # Framing is checked while decoding; the ordering rules and the target's needs are checked
    # once, on the output records (one validator: its memory grows with the node count).
    source = ImageStream(args.input)
    with atomic_output(args.output, force=args.force) as out:
        converter, warnings = _convert(args, profile, source, out)
        if converter.losses and not args.lossy:
            lost = "; ".join(converter.losses.lines())
            # Raising inside the block removes the temporary file; OUT is never created.
            raise _LossRefusedError(
                f"{display_name(args.input)}: converting to {_describe(converter.target)} for "
                f"{profile.name} would lose: {lost} (--lossy drops them)"
            )
    for line in converter.losses.lines():
        print(f"xsmig {NAME}: dropped {line}", file=sys.stderr)
    for warning in warnings:
        print(
            f"xsmig {NAME}: {display_name(args.output, output=True)}: warning: {warning}",
            file=sys.stderr,
        )
    return EXIT_OK


def run_guarded(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except _LossRefusedError as exc:
        return fail(NAME, str(exc))


class _LossRefusedError(Exception):
    pass


def _describe(header: Header) -> str:
    return f"version {header.version} {'big' if header.big_endian else 'little'} endian"


def _convert(
    args: argparse.Namespace, profile: Profile, source: ImageStream, out: BinaryIO
) -> tuple[ImageConverter, list[str]]:
    converter: ImageConverter | None = None
    encoder: RecordEncoder | None = None
    checker: StreamValidator | None = None
    index = 0
    offset = 0
    writing = True
    for located in records_of(source):
        if converter is None:
            assert source.header is not None
            header = target_header(args, profile, source.header)
            converter = ImageConverter(source.header, header, profile)
            encoder = RecordEncoder(header)
            checker = _output_checker(header, profile, args.output)
            preamble = encoder.preamble()
            out.write(preamble)
            offset = len(preamble)
        assert encoder is not None and checker is not None
        record = converter.convert(located.record)
        if converter.losses and not args.lossy:
            writing = False  # the output will be refused; keep reading to list every loss
        if record is None:
            continue
        try:
            checker.check(Located(index, offset, record))
        except ImageError as exc:
            # Name the input record that produced the offending output record.
            exc.record_index, exc.offset = located.index, located.offset
            exc.record_type = located.record.type
            raise located_error(exc, display_name(args.input)) from None
        data = encoder.encode(record)
        if writing:
            out.write(data)
        index += 1
        offset += len(data)
    assert converter is not None and checker is not None
    return converter, checker.warnings


def _output_checker(header: Header, profile: Profile, output: str) -> StreamValidator:
    try:
        return StreamValidator(header, profile)
    except ImageError as exc:
        raise located_error(exc, display_name(output, output=True)) from None
