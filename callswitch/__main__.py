from __future__ import annotations

import sys

from callswitch.cli import main

sys.exit(main())
