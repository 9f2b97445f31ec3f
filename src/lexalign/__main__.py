"""``python -m lexalign``: the ``lexalign`` command."""

import sys

from lexalign.cli import main

sys.exit(main())
