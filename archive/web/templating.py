"""Jinja2 set-up: autoescape everywhere, templates found both in the repo and when installed."""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from archive.config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """`archive/templates` in an installed wheel; the top-level `templates/` in a checkout."""
    for candidate in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates"):
        if (candidate / "base.html").is_file():
            return candidate
    raise RuntimeError("The templates folder is missing from this installation.")


def static_dir() -> Path:
    return templates_dir() / "static"


def make_templates(settings: Settings) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["site_title"] = settings.site_title
    env.globals["site_description"] = settings.site_description
    env.globals["base_url"] = settings.base_url
    return Jinja2Templates(env=env)
