"""Run Parley's benchmarks: every bench/bench_*.py module's `main()`, in name order.

    .venv/bin/python bench/run.py            # all of them (what `make bench` does)
    .venv/bin/python bench/run.py api        # only bench_api.py (also: bench_api, bench_api.py)
    .venv/bin/python bench/run.py --list     # the names available
    .venv/bin/python bench/run.py schedule --burst 1000   # options after the names go to them

A module's `main()` returns an exit code (0 on success, None counts as 0) or raises. Every
selected module runs even if an earlier one failed; the exit code is 1 if any failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(BENCH_DIR), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

PREFIX = "bench_"


def available() -> list[str]:
    """Short names (`api` for bench_api.py) of the bench modules, sorted."""
    return sorted(p.stem[len(PREFIX) :] for p in BENCH_DIR.glob(f"{PREFIX}*.py"))


def _short(arg: str) -> str:
    name = Path(arg).name
    name = name.removesuffix(".py")
    return name.removeprefix(PREFIX)


def main(argv: list[str]) -> int:
    names = available()
    if "--list" in argv or "-l" in argv:
        print("\n".join(names))
        return 0
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    # Options after the names (`schedule --burst 1000`) go to the selected benches' main().
    first_option = next((i for i, a in enumerate(argv) if a.startswith("--")), len(argv))
    argv, options = argv[:first_option], argv[first_option:]
    selected = [_short(a) for a in argv] or names
    unknown = [n for n in selected if n not in names]
    if unknown:
        print(f"Unknown bench: {', '.join(unknown)} (available: {', '.join(names)})")
        return 2
    if not selected:
        print("No bench modules found in bench/")
        return 2

    failed: list[str] = []
    for name in selected:
        print(f"=== {PREFIX}{name} ===", flush=True)
        started = time.monotonic()
        try:
            module = importlib.import_module(f"{PREFIX}{name}")
            code = (module.main(options) if options else module.main()) or 0
        except KeyboardInterrupt:
            print("Interrupted")
            return 130
        except Exception as exc:  # noqa: BLE001 -- report and go on with the next bench
            from harness import BenchError

            if isinstance(exc, BenchError):
                print(f"ERROR: {exc}")
            else:
                traceback.print_exc()
            code = 1
        print(
            f"=== {PREFIX}{name}: {'ok' if code == 0 else 'FAILED'} "
            f"in {time.monotonic() - started:.1f}s ===\n",
            flush=True,
        )
        if code != 0:
            failed.append(name)

    if failed:
        print(f"Failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
