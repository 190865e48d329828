"""Every documented command line names a command and current flags that exist (README.md, docs/*.md).

The lines are not run (many need CK+ or minutes); each is resolved to its
command and every ``--flag`` on it must be one of that command's options.
"""

from __future__ import annotations

import pathlib
import re

import typer

from interpret_core.cli import load_plugin_commands

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Where a command line ends inside a longer shell line or sentence.
_END = re.compile(r"\s(?:&&|\|\||#|>|2>|;)\s|`|$")


def _documented_lines() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        in_code = in_python = False
        text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))  # join shell continuation lines
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
                in_python = in_code and "python" in line  # Python examples may name a plugin's made-up commands
                continue
            if in_python:
                continue
            indented = re.match(r"^ {4,}(\$ )?interp ", line) is not None  # a Markdown indented code block
            candidates = re.findall(r"`(interp [^`]+)`", line) if not (in_code or indented) else []
            if in_code or indented:
                for match in re.finditer(r"(?:^|[\s$])interp ", line):
                    rest = line[match.end() - len("interp "):]
                    candidates.append(rest[: _END.search(rest).start()])
            found += [(path.name, text.strip()) for text in candidates]
    return found


def _leaf(root, words: list[str]):
    command, path = root, []
    for word in words:
        commands = getattr(command, "commands", None)
        if not commands or word not in commands:
            break
        command = commands[word]
        path.append(word)
    return command, path


def test_documented_command_lines_use_existing_commands_and_flags():
    root = typer.main.get_command(load_plugin_commands())
    lines = _documented_lines()
    assert len(lines) > 40  # the walk found the docs' examples
    problems = []
    for source, text in lines:
        words = text.split()[1:]
        command, path = _leaf(root, [w for w in words if not w.startswith("-")][:2])
        if not path:
            if words and not words[0].startswith("-") and words[0] not in ("...",):
                problems.append(f"{source}: `{text}`: no command {words[0]!r}")
            continue
        if hasattr(command, "commands"):
            continue  # a group named on its own, e.g. `interp data`
        # Old spellings (hidden) do not count: the docs show the current ones.
        flags = {
            opt for p in command.params if not getattr(p, "hidden", False)
            for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
        }
        flags |= {"--help", "-h"}
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", text):
            if flag not in flags:
                problems.append(f"{source}: `{text}`: `interp {' '.join(path)}` has no {flag}")
    assert not problems, "\n".join(problems)
