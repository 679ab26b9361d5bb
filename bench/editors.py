"""One process of concurrent editors for bench/changes.py: each thread retitles its own episode
through `Catalog.change` (the path every edit takes); prints how many landed and the retries."""

from __future__ import annotations

import json
import sys
import threading

from archive.catalog import Catalog, CatalogData
from archive.config import Settings
from archive.runtime import make_store


def main() -> None:
    label, ids = sys.argv[1], sys.argv[2:]
    settings = Settings.from_env()
    catalog = Catalog(make_store(settings, settings.s3_endpoint), ttl=settings.catalog_ttl)
    catalog.refresh()
    landed: list[str] = []
    start = threading.Barrier(len(ids))

    def edit(episode_id: str) -> None:
        def apply(data: CatalogData) -> None:
            data.episodes[episode_id].title = f"Edited by {label}"

        start.wait()
        catalog.change(apply, check_new_keys=False)
        landed.append(episode_id)

    threads = [threading.Thread(target=edit, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"landed": len(landed), "retries": catalog.retries}))


if __name__ == "__main__":
    main()
