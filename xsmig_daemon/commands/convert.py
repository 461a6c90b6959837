"""``xsmig convert IN OUT``: rewrite an image for another version, byte order or loader."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from ..cli import EXIT_OK, EXIT_USAGE
from ..image.loader_layout import LayoutOptions, LoaderLayout, read_ahead_specials
from ..image.pipeline import ImageReader, ImageRewrite
from ..image.profiles import Profile, get_profile, target_help
from ..image.records import Header
from ..imagefile import (
    atomic_output,
    check_not_terminal,
    check_writable_target,
    display_name,
    output_name,
    read_chunks,
)
from ._common import TARGETS, fail, guarded

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
            "given: then it is dropped and listed on stderr. What a Xen 4.22 dump holds broken "
            "(depth watches whose depth it never wrote, DOMAIN_DATA of domains its loader does "
            "not know) is always repaired and listed. For a real xenstored target the "
            "output is laid out as that version loads and writes it (GLOBAL_DATA fds, dom0's "
            "ring first, special nodes where it puts them; a real dump of another version gets "
            "the target's fd numbers); each such change is a note on stderr. "
            "Exit 0 written, 1 failed, 2 usage."
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
        help=target_help() + " (default: spec)",
    )
    parser.add_argument(
        "--keep-fds",
        action="store_true",
        help="xen-* targets: keep a real dump's fd numbers instead of the target version's",
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
    args.output = output_name(args.output)
    check_not_terminal(args.output)
    check_writable_target(args.output, force=args.force)
    # Framing is checked while decoding; the ordering rules and the target's needs are checked
    # once, on the output records (one validator: its memory grows with the node count).
    layout = _layout(args, profile)
    rewrite = ImageRewrite(
        read_chunks(args.input),
        profile,
        functools.partial(target_header, args, profile),
        name=display_name(args.input),
        layout=layout,
    )
    with atomic_output(args.output, force=args.force) as out:
        for data in rewrite:
            if rewrite.losses and not args.lossy:
                continue  # the output will be refused; keep reading to list every loss
            out.write(data)
        if rewrite.losses and not args.lossy:
            lost = "; ".join(rewrite.losses.lines())
            assert rewrite.rewriter is not None
            # Raising inside the block removes the temporary file; OUT is never created.
            raise _LossRefusedError(
                f"{display_name(args.input)}: converting to {_describe(rewrite.rewriter.target)} "
                f"for {profile.name} would lose: {lost} (--lossy drops them)"
            )
    for line in rewrite.repairs.lines():
        print(f"xsmig {NAME}: repaired {line}", file=sys.stderr)
    for line in rewrite.omitted.lines():
        print(f"xsmig {NAME}: not carried: {line}", file=sys.stderr)
    for line in rewrite.losses.lines():
        print(f"xsmig {NAME}: dropped {line}", file=sys.stderr)
    for note in layout.notes if layout is not None else []:
        print(f"xsmig {NAME}: note: {note}", file=sys.stderr)
    for warning in rewrite.warnings:
        print(
            f"xsmig {NAME}: {display_name(args.output, output=True)}: warning: {warning}",
            file=sys.stderr,
        )
    return EXIT_OK


def _layout(args: argparse.Namespace, profile: Profile) -> LoaderLayout | None:
    """For a real xenstored target: its loader's layout (the special nodes read ahead from
    a file input when that version writes them first)."""
    if not profile.is_c_loader:
        return None
    specials = None
    if profile.specials_first and args.input != "-":
        reader = ImageReader(read_chunks(args.input), name=display_name(args.input))
        specials = read_ahead_specials(item.record for item in reader)
    return LoaderLayout(profile, LayoutOptions(keep_fds=args.keep_fds), specials=specials)


def run_guarded(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except _LossRefusedError as exc:
        return fail(NAME, str(exc))


class _LossRefusedError(Exception):
    pass


def _describe(header: Header) -> str:
    return f"version {header.version} {'big' if header.big_endian else 'little'} endian"
