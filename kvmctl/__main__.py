import sys

from kvmctl.cli import main

sys.exit(main())
