"""Open a rendered board page in headless Chromium: screenshot it and check what the browser built.

    .venv/bin/python benchmarks/render_screenshot.py [--board general] [--root leaderboards]
        [--out logs/screenshots/general.png] [--render]

Prints the PNG path and size, and from the DOM Chromium built (``--dump-dom``): the number of
table rows and inline SVG plots, the table text, and whether the page is wider than the window
(scrollbars are shown, not hidden, so an overflow is visible in the screenshot too). Exits 3 with a clear message when no
Chromium is installed (Debian: ``apt-get install chromium``); CI does not install it.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _Dom(HTMLParser):
    """Counts board table rows and SVGs; collects the table's text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.svgs = 0
        self.in_body = False
        self.text: list[str] = []
        self.scroll_width: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            width = dict(attrs).get("data-scroll-width")
            self.scroll_width = int(width) if width and width.isdigit() else None
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows += 1
        elif tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self.in_body = False

    def handle_data(self, data: str) -> None:
        if self.in_body and data.strip():
            self.text.append(data.strip())


def _browser(binary: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="embench-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"{path} is not a PNG")
    return struct.unpack(">II", header[16:24])


# Run in the page (a measuring copy only): the width of the whole document, which exceeds the
# window when something (a wide table outside a scrolling box) makes the page scroll sideways.
_MEASURE = (
    "<script>document.body.setAttribute('data-scroll-width', "
    "String(document.documentElement.scrollWidth));</script>"
)


def _dom(binary: str, page: Path, size: str) -> _Dom:
    """The DOM Chromium built for ``page`` at window ``size``, with the page's scroll width."""
    text = page.read_text()
    with tempfile.TemporaryDirectory(prefix="embench-measure-") as folder:
        copy = Path(folder) / page.name
        copy.write_text(text.replace("</body>", f"{_MEASURE}</body>", 1))
        dom = _Dom()
        dom.feed(_browser(binary, f"--window-size={size}", "--dump-dom", copy.as_uri()).stdout)
    return dom


def screenshot(page: Path, out: Path, size: str = "1280,1600") -> dict[str, Any]:
    """Screenshot ``page`` into ``out`` and report what the browser's DOM holds."""
    binary = find_chromium()
    if binary is None:
        raise RuntimeError("no chromium on PATH (Debian: apt-get install chromium)")
    url = page.resolve().as_uri()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    shot = _browser(binary, f"--screenshot={out.resolve()}", f"--window-size={size}", url)
    if not out.is_file():
        raise RuntimeError(f"chromium wrote no screenshot: {shot.stderr.strip()[-400:]}")
    dom = _dom(binary, page, size)
    width, height = _png_size(out)
    return {
        "png": str(out),
        "png_bytes": out.stat().st_size,
        "width": width,
        "height": height,
        "table_rows": dom.rows,
        "svgs": dom.svgs,
        "text": " ".join(dom.text),
        "scroll_width": dom.scroll_width,
        "overflows": dom.scroll_width is not None and dom.scroll_width > width,
    }


def main() -> int:
    """Render (optionally), screenshot one board page and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="general")
    parser.add_argument("--root", type=Path, default=None, help="leaderboards folder")
    parser.add_argument("--out", type=Path, default=None, help="PNG path")
    parser.add_argument("--render", action="store_true", help="run `leaderboard render` first")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from embench.leaderboard.boards import leaderboards_root

    root = leaderboards_root(args.root)
    if args.render:
        from embench.leaderboard.render import render_all

        render_all(root)
    page = root / args.board / "index.html"
    if not page.is_file():
        print(f"no {page}: run `embench leaderboard render` first", file=sys.stderr)
        return 2
    if find_chromium() is None:
        print(
            "no chromium on PATH: `apt-get install chromium` to take screenshots", file=sys.stderr
        )
        return 3
    out = (
        args.out
        or Path(__file__).resolve().parents[1] / "logs" / "screenshots" / f"{args.board}.png"
    )
    report = screenshot(page, out)
    print(f"screenshot: {report['png']} ({report['width']}x{report['height']}, "
          f"{report['png_bytes']} bytes)")  # fmt: skip
    print(f"DOM: {report['table_rows']} table row(s), {report['svgs']} inline SVG plot(s)")
    print(f"table text: {report['text'][:300]}")
    print(f"page width {report['scroll_width']} px in a {report['width']} px window: "
          f"{'overflows' if report['overflows'] else 'fits'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
