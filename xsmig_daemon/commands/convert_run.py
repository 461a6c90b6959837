"""What ``xsmig convert`` does once its command line is parsed (``commands/convert.py``
builds the parser without importing any of this)."""

from __future__ import annotations

import argparse
import functools
import sys

from ..cli import EXIT_OK, EXIT_USAGE
from ..image.loader_layout import LayoutOptions, LoaderLayout, read_ahead_specials
from ..image.pipeline import ImageReader, ImageRewrite
from ..image.profiles import Profile, get_profile
from ..image.records import Header
from ..imagefile import (
    atomic_output,
    check_not_terminal,
    check_writable_target,
    display_name,
    output_name,
    read_chunks,
)
from ._common import fail
from .convert import NAME


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
            if rewrite.report.losses and not args.lossy:
                continue  # the output will be refused; keep reading to list every loss
            out.write(data)
        if rewrite.report.losses and not args.lossy:
            lost = "; ".join(rewrite.report.losses.lines())
            assert rewrite.rewriter is not None
            # Raising inside the block removes the temporary file; OUT is never created.
            raise _LossRefusedError(
                f"{display_name(args.input)}: converting to {_describe(rewrite.rewriter.target)} "
                f"for {profile.name} would lose: {lost} (--lossy drops them)"
            )
    for line in rewrite.report.repairs.lines():
        print(f"xsmig {NAME}: repaired {line}", file=sys.stderr)
    for line in rewrite.report.omitted.lines():
        print(f"xsmig {NAME}: not carried: {line}", file=sys.stderr)
    for line in rewrite.report.losses.lines():
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
