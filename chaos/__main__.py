"""python -m chaos: see chaos/command.py."""

import sys

from chaos.command import main

sys.exit(main())
