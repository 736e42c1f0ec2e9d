"""Saving a setting into config.yaml the way the original's GUI saves its own:
the value changes, everything else stays (comments, order, spacing, the
comment column after the value).

`set_field(text, "proxy.auth_mode", "strict")` edits the text; `save(path,
{...})` edits the file, refuses to write anything that would not load back
(the new text is parsed first) and replaces the file atomically (replace_file).
The key write-back (a missing api_key generated, auth.regenerate) is one such
save: `write_key(path, key)`. No mitmproxy import.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import yaml

from authgate.config.read import parse_config, read_text
from authgate.config.settings import FileConfig

_SECTION = r"^{name}:[ \t]*(#.*)?$"
_INDENTED = re.compile(r"^([ \t]+)\S", re.M)
_YAML_SPECIAL = tuple("!&*%@`|>'\"#{}[],?:-")


def yaml_scalar(value: object) -> str:
    """A value as config.yaml writes it: plain where YAML reads it back unchanged
    (8045, true, http://host:port, sk-...), else double-quoted ("off", a key with
    a # in it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else repr(value)
    text = str(value)
    try:
        plain_ok = (text and not text.startswith(_YAML_SPECIAL) and " #" not in text and ": " not in text
                    and text == text.strip() and yaml.safe_load(text) == text)
    except yaml.YAMLError:
        plain_ok = False
    return text if plain_ok else json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _split_comment(rest: str) -> tuple[str, str]:
    """`value   # comment` -> ("value", "   # comment"): the comment starts at a #
    after whitespace, outside quotes."""
    quote = None
    for i, c in enumerate(rest):
        if quote:
            if c == quote and (quote == "'" or rest[i - 1] != "\\"):
                quote = None
        elif c in "\"'" and not rest[:i].strip():
            quote = c
        elif c == "#" and (i == 0 or rest[i - 1] in " \t"):
            value = rest[:i].rstrip(" \t")
            return value, rest[len(value):]
    return rest.rstrip(" \t"), ""


def _section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header line, end) of a top-level section: its block ends at the next
    line that starts in column 0 and is not a comment."""
    header = re.compile(_SECTION.format(name=re.escape(section)))
    for i, line in enumerate(lines):
        if header.match(line.rstrip("\r\n")):
            end = i + 1
            while end < len(lines):
                stripped = lines[end].rstrip("\r\n")
                if stripped and not stripped[0].isspace() and not stripped.startswith("#"):
                    break
                end += 1
            return i, end
    return None


def set_field(text: str, key: str, value: object) -> str:
    """config.yaml's text with `key` ("proxy.auth_mode") set to `value`,
    comments kept; the field is added under its section (or the section at the
    end) when missing."""
    section, _, name = key.partition(".")
    scalar = yaml_scalar(value)
    lines = text.splitlines(keepends=True)
    span = _section_span(lines, section)
    if span is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}{section}:\n  {name}: {scalar}\n"
    start, end = span
    field = re.compile(rf"^(?P<indent>[ \t]+){re.escape(name)}:(?P<space>[ \t]*)(?P<rest>.*?)(?P<nl>\r?\n?)$")
    indent = None
    for i in range(start + 1, end):
        m = field.match(lines[i])
        if m:
            old, comment = _split_comment(m["rest"])
            if comment:  # the comment stays in its column (or one space after a longer value)
                note = comment.lstrip(" \t")
                width = len(old) + len(comment) - len(note)
                scalar = (scalar.ljust(width) if len(scalar) < width else scalar + " ") + note
            lines[i] = f"{m['indent']}{name}:{m['space'] or ' '}{scalar}{m['nl']}"
            return "".join(lines)
        if indent is None and (im := _INDENTED.match(lines[i])) and not lines[i].lstrip().startswith("#"):
            indent = im.group(1)
    nl = "" if lines[start].endswith("\n") else "\n"
    lines.insert(start + 1, f"{nl}{indent or '  '}{name}: {scalar}\n")
    return "".join(lines)


def save(path: str | os.PathLike, changes: dict[str, object]) -> FileConfig:
    """Set each field of `changes` in the file at `path`, comments kept; the
    new text is validated first (ConfigError, and nothing written, when it
    would not load) and replaces the file atomically. -> what the file now says.
    The file is read as at start (config_read.read_text: a small regular file)."""
    path = Path(path)
    text = read_text(path)
    for key, value in changes.items():
        text = set_field(text, key, value)
    cfg = parse_config(text, str(path))
    replace_file(path, text)
    return cfg


# ------------------------------------------------------------- key write-back

def create_from_template(path: str | os.PathLike, template: str | os.PathLike, key: str) -> bool:
    """First start: the user's config.yaml made from the shipped defaults, with `key` as
    proxy.api_key. False, and nothing written, when the file exists already (another start
    made it meanwhile: it is never replaced). The new file appears whole, or not at all."""
    path = Path(path)
    text = set_field(read_text(template), "proxy.api_key", key)
    parse_config(text, str(path))  # never write what would not load back
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # it holds the key
        os.link(tmp, path)  # fails if the file exists: a concurrent start's file is kept
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def write_key(path: str | os.PathLike, key: str) -> None:
    """Save the key into config.yaml atomically, under proxy: only (upstream.headers
    may name an api_key too); refuses to write a file that would not load."""
    save(path, {"proxy.api_key": key})


def replace_file(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`
    (readers see the old file or the new one, never half of it)."""
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=path.suffix or ".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
