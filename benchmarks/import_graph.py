"""embench's internal import graph between rooms: edges, back arrows, cycles, function-local imports.

A room is a subpackage (``embench.models``) or a top-level module (``embench.judge``). Every
``import embench.x`` / ``from embench.x import ...`` in ``src/embench`` is read with ``ast`` (no
code runs), including imports inside functions and under ``TYPE_CHECKING``. A back arrow is an
edge from a room to one listed above it in the import-linter layers contract of this
checkout's pyproject.toml (the revision measured, if it has one, else this one's); a cycle is a strongly connected set of rooms. Prints the figures, so a
revision can be compared with another:

    .venv/bin/python benchmarks/import_graph.py [--root path/to/checkout] [--edges]
"""

from __future__ import annotations

import argparse
import ast
import re
import tomllib
from collections import defaultdict
from pathlib import Path


def layers(pyproject: Path) -> list[tuple[str, ...]]:
    """The rooms of each layer, from the top, as the import-linter layers contract lists them."""
    config = tomllib.loads(pyproject.read_text())
    contracts = config.get("tool", {}).get("importlinter", {}).get("contracts", [])
    listed = next((c["layers"] for c in contracts if c.get("type") == "layers"), [])
    return [tuple(r.strip() for r in re.split(r"[|:]", layer)) for layer in listed]


def room_of(module: str) -> str:
    """``embench.models.provider`` -> ``models``; ``embench`` -> ``embench``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(root: Path, file: Path) -> str:
    parts = list(file.relative_to(root / "src").with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(file: Path, module: str) -> list[tuple[str, list[str], bool]]:
    """(imported embench module, the names it imports as dotted paths, inside a function?) for
    each import statement's target."""
    tree = ast.parse(file.read_text())
    found: list[tuple[str, list[str], bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(
                    (a.name, [a.name], local) for a in child.names if a.name.startswith("embench")
                )
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    base = module.split(".")[: -child.level or None]
                    target = ".".join([*base, target] if target else base)
                if target.startswith("embench"):
                    found.append((target, [f"{target}.{a.name}" for a in child.names], local))
            visit(child, inner)

    visit(tree, False)
    return found


def _owner(target: str, names: set[str]) -> str:
    """The module a target names (``embench.run.manifest.RunManifest`` is not one: its module)."""
    while target not in names and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one room (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--edges", action="store_true", help="list every room edge")
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "pyproject.toml"
    layer_list = layers(args.root / "pyproject.toml") or layers(here)
    level = {room: i for i, rooms in enumerate(layer_list) for room in rooms}
    graph: dict[str, set[str]] = defaultdict(set)
    modules: dict[str, set[str]] = defaultdict(set)  # module-level graph, local imports included
    total = local = 0
    local_by_room: dict[str, int] = defaultdict(int)
    files = sorted((args.root / "src" / "embench").rglob("*.py"))
    names = {module_name(args.root, f) for f in files}
    for file in files:
        module = module_name(args.root, file)
        for target, dotted, inside in imports_of(file, module):
            if target == "embench":
                continue  # the package's own __version__
            total += 1
            local += inside
            local_by_room[room_of(module)] += inside
            modules[module].update(_owner(name, names) for name in dotted)
            if room_of(module) != room_of(target):
                graph[room_of(module)].add(room_of(target))
    rooms = {room_of(module_name(args.root, f)) for f in files} - {"embench"}
    edges = sorted((a, b) for a, targets in graph.items() for b in targets)
    back = [(a, b) for a, b in edges if level.get(a, 99) > level.get(b, 99)]
    unplaced = sorted(r for r in rooms if r not in level)
    print(f"rooms: {len(rooms)}  edges: {len(edges)}")
    print(f"back arrows: {len(back)}  " + ", ".join(f"{a} -> {b}" for a, b in back))
    cycles = strongly_connected(graph)
    print(f"cycles: {len(cycles)}  " + "; ".join(" <-> ".join(c) for c in cycles))
    module_cycles = strongly_connected(modules)
    print(
        f"module cycles: {len(module_cycles)}  " + "; ".join(" <-> ".join(c) for c in module_cycles)
    )
    print(f"internal imports: {total}  inside functions: {local}")
    print(
        "inside functions by room: "
        + ", ".join(f"{room} {count}" for room, count in sorted(local_by_room.items()) if count)
    )
    if unplaced:
        print(f"rooms outside the layers: {', '.join(unplaced)}")
    if args.edges:
        for a, b in edges:
            print(f"  {a} -> {b}")


if __name__ == "__main__":
    main()
