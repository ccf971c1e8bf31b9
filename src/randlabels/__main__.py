import sys

from randlabels.cli import main

sys.exit(main())
