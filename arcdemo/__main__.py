import sys

from arcdemo.cli import main

sys.exit(main())
