"""``python -m geos2vec``: the ``geos2vec`` command line, where the ``geos2vec`` script is not on ``PATH``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
