"""`python -m fastrollout ...` is `fastrollout ...`."""

import sys

from fastrollout.cli import main

sys.exit(main())
