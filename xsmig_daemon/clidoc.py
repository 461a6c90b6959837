"""The man page and the bash completion, generated from the argparse parser (never by hand).

    python -m xsmig_daemon.clidoc man  > docs/xsmig.1
    python -m xsmig_daemon.clidoc bash > contrib/bash-completion/xsmig

``tests/cli/test_clidoc.py`` fails when the committed files differ from what this writes, so
a new option cannot be forgotten in either.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from . import __version__
from .cli import COMMANDS, build_parser

MAN_SECTION = "1"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _visible(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        yield action


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(default)" in text:
        text = text % {"default": action.default}
    return text


# ---------------------------------------------------------------------------------- man
def _roff(text: str) -> str:
    escaped = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line if line[:1] in ".'" else line) for line in escaped.split("\n"))


def _option_title(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"\\fI{_roff(str(action.metavar or action.dest))}\\fR"
    names = ", ".join(f"\\fB{_roff(name)}\\fR" for name in action.option_strings)
    if action.nargs == 0:
        return names
    if action.choices is not None and action.metavar is None:
        value = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        value = str(action.metavar or action.dest.upper())
    return f"{names} \\fI{_roff(value)}\\fR"


def _man_command(lines: list[str], name: str, parser: argparse.ArgumentParser) -> None:
    lines += [f".SS {_roff(name)}", _roff(" ".join(parser.format_usage().split()[1:]))]
    if parser.description:
        lines += [".PP", _roff(parser.description)]
    for action in _visible(parser):
        if isinstance(action, argparse._HelpAction):
            continue
        lines += [".TP", _option_title(action), _roff(_help(action))]
    for sub_name, sub in _subparsers(parser).items():
        _man_command(lines, f"{name} {sub_name}", sub)


def man_page(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser(full=True)
    lines = [
        f'.TH XSMIG {MAN_SECTION} "" "xsmig {__version__}" "User Commands"',
        ".SH NAME",
        "xsmig \\- " + _roff(parser.description or ""),
        ".SH SYNOPSIS",
        "\\fBxsmig\\fR [\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR]",
        ".SH COMMANDS",
    ]
    for name, (_, help_text) in COMMANDS.items():
        lines += [".TP", f"\\fB{_roff(name)}\\fR", _roff(help_text)]
    lines.append(".SH OPTIONS")
    for name, sub in _subparsers(parser).items():
        _man_command(lines, f"xsmig {name}", sub)
    lines += [
        ".SH EXIT STATUS",
        _roff(
            "0 success, valid or identical; 1 invalid, different or failed (one line on "
            "standard error naming what and where); 2 usage or configuration error; "
            "snapshot also 130 (SIGINT) and 143 (SIGTERM)."
        ),
        ".SH FILES",
        ".TP",
        "\\fI/etc/xsmig/config.toml\\fR",
        _roff("configuration of xsmig serve, xsmig ctl and xsmig lu-hook"),
        ".SH SEE ALSO",
        _roff("xenstored(8), xenstore-ls(1), systemctl(1); README.md and docs/ of xsmig"),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- completion
def _words(parser: argparse.ArgumentParser) -> list[str]:
    words = [opt for action in _visible(parser) for opt in action.option_strings]
    return words + list(_subparsers(parser))


def _choices(prefix: str, parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    found = []
    for action in _visible(parser):
        if action.choices is not None and action.option_strings:
            values = [str(c) for c in action.choices]
            found += [(f"{prefix} {opt}", values) for opt in action.option_strings]
    for name, sub in _subparsers(parser).items():
        found += _choices(f"{prefix}/{name}", sub)
    return found


def _command_parsers(
    prefix: str, parser: argparse.ArgumentParser
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for name, sub in _subparsers(parser).items():
        yield from _command_parsers(f"{prefix}/{name}", sub)


def bash_completion(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser(full=True)
    path_cases: list[str] = []
    choice_cases: list[str] = []
    for name, sub in _subparsers(parser).items():
        for key, command in _command_parsers(name, sub):
            path_cases.append(f'        {key}) words="{" ".join(_words(command))}" ;;')
        for key, values in _choices(name, sub):
            choice_cases.append(f'        "{key}") words="{" ".join(values)}" ;;')
    top = " ".join(_words(parser))
    paths = "|".join(key for key, _ in _all_paths(parser))
    return f"""# bash completion for xsmig -- generated by `python -m xsmig_daemon.clidoc bash`
# from the argparse parser; do not edit. Install: /usr/share/bash-completion/completions/xsmig
_xsmig() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path="" words="" i
    # The command path: the words so far that name (sub)commands, e.g. ctl/snapshot.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) case "${{path:+$path/}}${{COMP_WORDS[i]}}" in
                   {paths}) path="${{path:+$path/}}${{COMP_WORDS[i]}}" ;;
               esac ;;
        esac
    done
    case "$path $prev" in
{chr(10).join(choice_cases)}
    esac
    if [[ -n $words ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
        return
    fi
    case "$path" in
        "") words="{top}" ;;
{chr(10).join(path_cases)}
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
    else
        mapfile -t COMPREPLY < <(
            compgen -W "$(_xsmig_commands "$words")" -- "$cur"
            compgen -f -- "$cur"
        )
    fi
}}
_xsmig_commands() {{
    local word
    for word in $1; do [[ $word == -* ]] || printf '%s\\n' "$word"; done
}}
complete -o filenames -F _xsmig xsmig
"""


def _all_paths(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    paths: list[tuple[str, argparse.ArgumentParser]] = []
    for name, sub in _subparsers(parser).items():
        paths += list(_command_parsers(name, sub))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xsmig_daemon.clidoc", description=__doc__)
    parser.add_argument("what", choices=("man", "bash"))
    args = parser.parse_args(argv)
    sys.stdout.write(man_page() if args.what == "man" else bash_completion())
    return 0


if __name__ == "__main__":
    sys.exit(main())
