#!/usr/bin/env python3
"""Rewrite the INVENTED SWOW-shaped files in this folder from the lexicons beside this script (README.md).

Usage: ``python make_illustrative.py [--outdir DIR]`` (default: this script's folder). The generator is
``lexalign.testing.illustrative.swow``; one seeded random stream, so the output is byte-for-byte reproducible.
"""

import sys
from pathlib import Path

from lexalign.testing.illustrative.swow import main

if __name__ == "__main__":
    main(sys.argv[1:], Path(__file__).resolve().parent)
