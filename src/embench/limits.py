"""Bounded reading of user files: size, file type, YAML aliases and nesting.

Every YAML or text file embench reads on a user's behalf (question sets, training and experiment
configs, board.yaml) goes through ``read_text``/``load_yaml``: only regular files (never
``/dev/zero``, a FIFO or a folder), at most ``max_bytes``, and YAML whose nesting and whose
size *after* alias expansion stay bounded (a "billion laughs" file is a few hundred bytes that
expand to 10^9 nodes). A file over a limit is a one-line EmbenchError within milliseconds.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from embench.errors import EmbenchError

MAX_FILE_BYTES = 8 * 2**20  # question sets and configs are kilobytes; 8 MiB is generous
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_NODES = 1_000_000  # YAML nodes once every alias is expanded


def read_text(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``, or a one-line EmbenchError."""
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as ex:
        raise EmbenchError(f"cannot read {what} {path}: {ex.strerror or ex}") from None
    if not stat.S_ISREG(info.st_mode):
        raise EmbenchError(f"{what} {path} is not a regular file; give a file")
    if info.st_size > max_bytes:
        raise EmbenchError(
            f"{what} {path} is {info.st_size / 2**20:.1f} MiB, over the {max_bytes / 2**20:g} "
            "MiB limit"
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since stat() is still bounded
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as ex:
        raise EmbenchError(f"cannot read {what} {path}: {ex}") from None
    if len(data) > max_bytes:
        raise EmbenchError(f"{what} {path} is over the {max_bytes / 2**20:g} MiB limit")
    return text


class _Bounded(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit while scanning ``[``/``{`` (its scanner slows
    quadratically with their depth) and while composing."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:  # noqa: D102, N803
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep(f"nested over {MAX_DEPTH} levels deep (line {self.line + 1})")
        super().fetch_flow_collection_start(TokenClass)

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeep(f"nested over {MAX_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(Exception):
    pass


def _expanded_size(node: yaml.Node, source: str) -> int:
    """Nodes in ``node`` with every alias expanded (a shared node counts at each use)."""
    sizes: dict[int, int] = {}
    order: list[yaml.Node] = []
    stack, seen = [node], set()
    while stack:  # children before parents, without recursion
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        order.append(current)
        stack.extend(_children(current))
    for current in reversed(order):
        total = 1 + sum(sizes.get(id(child), 0) for child in _children(current))
        if total > MAX_NODES:
            raise EmbenchError(
                f"{source}: expands to over {MAX_NODES:,} YAML nodes (aliases of aliases: a "
                "'billion laughs' file?); write the data out plainly"
            )
        sizes[id(current)] = total
    return sizes[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse_yaml(text: str, source: str) -> Any:
    """YAML text as Python data, refusing deep nesting and alias bombs in one line."""
    loader = _Bounded(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source)
        return loader.construct_document(node)
    except _TooDeep as ex:
        raise EmbenchError(f"{source}: {ex}") from None
    except yaml.YAMLError as ex:
        reason = (str(ex).splitlines() or [type(ex).__name__])[0]
        raise EmbenchError(f"{source}: not valid YAML ({reason})") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """A regular YAML file of at most ``max_bytes``, parsed with the limits of ``parse_yaml``."""
    return parse_yaml(read_text(path, what, max_bytes), str(path))
