import sys

from tracesearch.cli import main

sys.exit(main())
