"""``python -m lexalign.checks CHECK [ARGS]``: the same as ``lexalign check CHECK [ARGS]``."""

import sys

from lexalign.checks.command import main
from lexalign.core.snake import run_command

sys.exit(run_command(main, sys.argv[1:]))
