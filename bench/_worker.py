"""Child process for one measured call: ``python -m bench._worker module:function '{json kwargs}'``.

Imports the module (not timed), records RSS, times the call, prints one ``BENCH_RESULT {json}`` line.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

from bench.common import current_rss_mb, peak_rss_mb


def main(argv: list[str]) -> None:
    target, raw_args = argv
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = json.loads(raw_args)
    # Warm the heavy imports a function declares, so that the timing is the work alone.
    for name in getattr(function, "imports", ()):
        importlib.import_module(name)
    rss_before = current_rss_mb()
    peak_before = peak_rss_mb()
    start = time.perf_counter()
    value = function(**kwargs)
    seconds = time.perf_counter() - start
    report = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_mb": peak_before,
        "rss_before_mb": rss_before,
        "value": value,
    }
    print("BENCH_RESULT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
