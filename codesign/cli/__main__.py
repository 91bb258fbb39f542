"""`python -m codesign.cli`: the `codesign` command without its console script."""

import sys

from codesign.cli.main import main

sys.exit(main())
