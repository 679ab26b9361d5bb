"""Screenshots of the public pages at a phone's and a laptop's size, from the demo archive.

    .venv/bin/python -m tests.screenshots [--out docs/screenshots]

Starts its own embedded storage, loads the enriched demo (tests/demo_site.py), serves it and
photographs home, an episode, a series and a search in Chromium (/usr/bin/chromium) at 390×844
and 1280×900, light and (home, episode) dark. Run it again whenever the pages change; it also
prints the JavaScript each page loads, the number the README quotes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archive.embedded import EmbeddedS3
from tests.browser import CHROMIUM, CHROMIUM_ARGS, LiveServer
from tests.demo_site import demo_settings, load_enriched_demo

SIZES = {"phone": (390, 844), "desktop": (1280, 900)}
ACCESS_KEY, SECRET_KEY = "archive-shots", "archive-shots-secret"


def pages(archive: Any) -> dict[str, str]:
    """The pages to photograph, by name: the newest recording and its series."""
    newest = archive.catalog.refresh().published[0]
    return {"home": "/", "episode": f"/episodes/{newest.slug}",
            "series": f"/series/{newest.series}", "search": "/search?q=trust"}


def script_bytes(tab: Any, url: str) -> int:
    """Bytes of JavaScript a page loads (uncompressed bodies of every script response)."""
    sizes: list[int] = []

    def seen(response: Any) -> None:
        if response.request.resource_type == "script":
            sizes.append(len(response.body()))

    tab.on("response", seen)
    tab.goto(url, wait_until="networkidle")
    tab.remove_listener("response", seen)
    return sum(sizes)


def settle(tab: Any) -> None:
    """Every image decoded (lazy ones included) and fonts ready, so nothing is half drawn."""
    tab.evaluate("""async () => {
      for (const img of document.images) { img.loading = 'eager'; }
      await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
      await document.fonts.ready;
    }""")


@contextmanager
def demo_server() -> Iterator[tuple[LiveServer, Any]]:
    with tempfile.TemporaryDirectory(prefix="archive-shots-") as folder:
        work = Path(folder)
        with EmbeddedS3(work / "s3", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                        bucket="archive-shots", volume_size_mb=64) as s3:
            settings = demo_settings(s3.endpoint, work, ACCESS_KEY, SECRET_KEY)
            archive = load_enriched_demo(settings)
            with LiveServer(settings) as server:
                yield server, archive


def take(out: Path) -> dict[str, int]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    js: dict[str, int] = {}
    with demo_server() as (server, archive), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        targets = pages(archive)
        for size, (width, height) in SIZES.items():
            for scheme in ("light", "dark"):
                context = browser.new_context(viewport={"width": width, "height": height},
                                              color_scheme=scheme, device_scale_factor=1)
                tab = context.new_page()
                for name, path in targets.items():
                    if scheme == "dark" and name not in ("home", "episode"):
                        continue
                    bytes_ = script_bytes(tab, server.url + path)
                    js[name] = bytes_
                    settle(tab)
                    suffix = "" if scheme == "light" else "-dark"
                    tab.screenshot(path=str(out / f"{name}-{size}{suffix}.png"))
                context.close()
        browser.close()
    return js


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium).", file=sys.stderr)
        return 1
    js = take(args.out)
    print(f"Screenshots written to {args.out}/")
    print("JavaScript per page (uncompressed):")
    for name, size in js.items():
        print(f"  {name:8} {size / 1024:.1f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
