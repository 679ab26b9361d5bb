"""Citations: what an episode page's citation panel costs (four CSL styles through citeproc-py,
each with its moment form) against the hand-built downloads (BibTeX, RIS, CSL-JSON) of the same
sources, and what a panel kept across catalogue snapshots costs afterwards.

    .venv/bin/python -m bench.citations [--quick]

Not wired into `make bench` (bench/__main__.py): `run()` returns `Result`s for when it is.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import date

from archive import citations
from archive.models import Person, Series
from archive.web import citing
from bench.tools import Result
from tests.factories import make_episode

SERIES = Series.new("Roundtables")


def _sources(count: int) -> list[citations.CitationSource]:
    speakers = [Person.parse(s) for s in ("Nicholas J Wheeler;chair;Birmingham",
                                          "Marijn van der Berg;discussant",
                                          "Naomi Head;panellist;Glasgow;0000-0002-1825-0097")]
    return [citations.CitationSource.of(
        make_episode(f"The Social Construction of Trust, part {n}", date=date(2024, 3, 5),
                     speakers=speakers), SERIES, url=f"https://archive.example.org/e/{n}",
        publisher="Trust Research Group") for n in range(count)]


def _median_ms(work: Callable[[citations.CitationSource], object],
               sources: list[citations.CitationSource]) -> float:
    times = []
    for source in sources:
        start = time.perf_counter()
        work(source)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run(count: int = 40) -> list[Result]:
    sources = _sources(count)
    citing.panel(sources[0], "warm-up", "harvard")  # styles parsed once per process

    def downloads(source: citations.CitationSource) -> None:
        citations.bibtex(source)
        citations.ris(source)
        citations.csl_json(source)

    baseline = _median_ms(downloads, sources)
    cold = _median_ms(lambda s: citing.panel(s, "slug", "harvard"), sources)
    kept = _median_ms(lambda s: citing.panel(s, "slug", "harvard"), sources)
    return [
        Result("citations", "citation panel, first render (ms per episode)", cold, baseline,
               "ms", higher_is_better=False, notes="baseline: BibTeX+RIS+CSL-JSON"),
        Result("citations", "citation panel, kept across snapshots (ms per episode)", kept,
               baseline, "ms", higher_is_better=False, target=10.0,
               notes="baseline: BibTeX+RIS+CSL-JSON"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for result in run(count=10 if args.quick else 40):
        print(f"{result.name:<58} {result.value:8.3f} ms  baseline {result.baseline:.3f} ms  "
              f"ratio {result.ratio:8.1f}  ({result.notes})")


if __name__ == "__main__":
    main()
