"""``python -m rightsizing_constructs``: see :mod:`rightsizing_constructs.cli`."""

import sys

from .cli import main

sys.exit(main())
