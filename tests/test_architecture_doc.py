"""docs/architecture.md stays true: every path it names exists, every package has a paragraph,
and every field of the run manifest is described."""

import re
from pathlib import Path

from embench.run.manifest import RunManifest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"`((?:src|tasks|trainers|tests|benchmarks|leaderboards|configs)/[^`\s]*)`")


def test_every_path_the_map_names_exists():
    named = set(PATH.findall(DOC.read_text()))
    assert len(named) > 60  # the map really lists the modules
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_package_has_a_paragraph():
    text = DOC.read_text()
    packages = [p.parent for p in (ROOT / "src" / "embench").rglob("__init__.py")]
    absent = [
        str(p.relative_to(ROOT))
        for p in packages
        if f"**`{p.relative_to(ROOT)}/`**" not in text and "__pycache__" not in p.parts
    ]
    assert absent == [], f"packages without a paragraph in docs/architecture.md: {absent}"


def test_every_manifest_field_is_described():
    table = DOC.read_text().split("## The run manifest", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    described = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert described == set(RunManifest.model_fields)


def test_the_layer_list_is_the_import_linter_contract():
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in contracts["contracts"] if c["type"] == "layers"]
    section = DOC.read_text().split("## Layers", 1)[1].split("\n## ", 1)[0]
    listed = [
        re.split(r"\s{2,}", line.strip())[0]
        for line in section.splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    assert listed == layers
