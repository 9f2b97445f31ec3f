"""Rewrite the illustrative (INVENTED) WVS inputs in this folder (README.md); seeded, reproducible.

    python data/illustrative/wvs/make_illustrative.py [OUT_DIR]

The generator is ``lexalign.testing.illustrative.wvs``.
"""

import sys
from pathlib import Path

from lexalign.testing.illustrative.wvs import write_wvs_files

HERE = Path(__file__).resolve().parent


def main(out_dir: Path = HERE) -> None:
    write_wvs_files(out_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
