"""Routes of this part of the site (filled in by its own issue)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
