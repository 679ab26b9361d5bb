"""`make bench`: run the benchmark sections, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from bench.tools import Result

HERE = Path(__file__).resolve().parent


def sections(quick: bool) -> dict[str, object]:
    from bench import changes, http, ingest, scale, stats, transcribe

    return {
        "http": lambda: http.run(seconds=3 if quick else 8),
        "ingest": lambda: ingest.run(minutes=5 if quick else 60),
        "scale": lambda: scale.run(sizes=(1000,) if quick else (1000, 10000, 100_000)),
        "changes": lambda: changes.run(size=2000 if quick else 100_000),
        "transcribe": lambda: transcribe.run(window_s=30 if quick else 120,
                                             long_minutes=2 if quick else 10),
        "stats": lambda: stats.run(seconds=3 if quick else 8,
                                   events=200_000 if quick else 10_000_000),
    }


def table(results: list[Result]) -> str:
    lines = [f"{'benchmark':<66} {'value':>10} {'baseline':>10} {'ratio':>7} {'target':>8}  ok",
             "-" * 110]
    for r in results:
        target = "" if r.target is None else ("≥" if r.higher_is_better else "≤") + f"{r.target:g}"
        ok = {None: "", True: "yes", False: "NO"}[r.meets_target]
        lines.append(f"{r.name:<66} {r.value:>10.2f} {r.baseline:>10.2f} {r.ratio:>7.2f} "
                     f"{target:>8}  {ok}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", action="append", help="run only these sections")
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    results: list[Result] = []
    for name, run in sections(args.quick).items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        results += run()  # type: ignore[operator]
        print(f"[{name}] done in {time.perf_counter() - started:.0f} s", flush=True)
    print(table(results))
    document = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "results": [{**r.__dict__, "ratio": r.ratio, "meets_target": r.meets_target}
                    for r in results],
    }
    args.output.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
