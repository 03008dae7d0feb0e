"""Reading a program file (YAML, or JSON) into plain data, keeping the line of every entry and field.

YAML's composed nodes carry their position, so errors can name the line they are about. A JSON
file is parsed by the JSON parser (its rules, e.g. `1e3` is a number) and composed by the YAML
parser as well, which reads JSON too, for the positions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathPart = str | int
DataPath = tuple[PathPart, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_DEPTH = 32
# libyaml when installed (it is with the wheels we use): tens of times faster on large files.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with the file: where (a dotted path and its line) and what."""

    path: str  # e.g. "merchants.3.locations.0.latitude"; "" for the file as a whole
    line: int | None
    message: str

    def format(self, name: str) -> str:
        """`file:line: path: message`, the shape editors and CI logs turn into links."""
        where = f"{name}:{self.line}" if self.line else name
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def dotted(path: Sequence[PathPart]) -> str:
    return ".".join(str(part) for part in path)


@dataclass(slots=True)
class Document:
    """A program file's data, and the 1-based line where each path of it starts."""

    name: str
    data: Any
    lines: dict[DataPath, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        """The line of the path, or of its nearest ancestor that has one (a missing field is
        reported on the line of the entry that lacks it)."""
        key = tuple(path)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def issue(self, path: Sequence[PathPart], message: str) -> Issue:
        return Issue(dotted(path), self.line_of(path), message)


class UnreadableFile(Exception):
    """The file cannot be read or parsed at all; `issues` says where."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(i.message for i in issues))
        self.issues = list(issues)


def from_data(data: Any, name: str = "<generated>") -> Document:
    """A document built in Python (the demo's, a test's): no lines to report."""
    return Document(name=name, data=data)


def read_file(path: Path) -> Document:
    """Read a `.json` file as JSON and anything else as YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableFile([Issue("", None, f"cannot read {path}: {exc}")]) from None
    if path.suffix.lower() == ".json":
        return parse_json(text, path.name)
    return parse_yaml(text, path.name)


def parse_yaml(text: str, name: str) -> Document:
    try:
        node, data = _compose_and_construct(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise UnreadableFile([Issue("", line, f"not valid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise UnreadableFile([Issue("", None, f"not valid YAML: {exc}")]) from None
    return _document(name, data, node)


def parse_json(text: str, name: str) -> Document:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} (column {exc.colno})"
        raise UnreadableFile([Issue("", exc.lineno, message)]) from None
    # Valid JSON never has a raw tab inside a string, so tabs between tokens (which YAML
    # refuses in places) can become spaces without moving anything to another line.
    try:
        node, _ = _compose_and_construct(text.replace("\t", " "))
    except yaml.YAMLError:
        node = None  # positions are a courtesy: the data is what JSON says it is
    return _document(name, data, node)


def _compose_and_construct(text: str) -> tuple[yaml.Node | None, Any]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _document(name: str, data: Any, node: yaml.Node | None) -> Document:
    if data is None:
        raise UnreadableFile([Issue("", 1, "the file is empty")])
    document = Document(name=name, data=data)
    if node is not None:
        repeated = list(_positions(node, (), document.lines))
        if repeated:
            raise UnreadableFile(repeated)
    return document


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _positions(node: yaml.Node, path: DataPath, lines: dict[DataPath, int]) -> Iterator[Issue]:
    """Record where each path starts; yield an issue for each key given twice in one mapping
    (YAML and JSON parsers silently keep the last, which hides a mistake)."""
    lines.setdefault(path, _line(node))
    if len(path) > _MAX_DEPTH:
        return  # an alias that contains itself: the schema reports the data, not us
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _positions(item, (*path, i), lines)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            key = str(key_node.value)
            if key in seen:
                yield Issue(
                    dotted((*path, key)),
                    _line(key_node),
                    f"the key {key!r} is given twice in this mapping (first on line {seen[key]})",
                )
                continue
            seen[key] = _line(key_node)
            lines[(*path, key)] = seen[key]
            yield from _positions(value_node, (*path, key), lines)
        # `<<: *anchor` keys: positions point at the anchor, unless the mapping overrides them.
        for source in merged:
            sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for mapping in sources:
                if isinstance(mapping, yaml.MappingNode):
                    for key_node, value_node in mapping.value:
                        key = str(key_node.value)
                        if key not in seen:
                            seen[key] = _line(key_node)
                            lines.setdefault((*path, key), seen[key])
                            yield from _positions(value_node, (*path, key), lines)
