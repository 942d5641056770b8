"""Architecture search of the AAE for one LineMOD object (``--help`` lists the objects and
options; the runner is aae.search).

    python examples/linemod/search.py ape            # quick profile, the shipped real ape
    python examples/linemod/search.py ape --bop-root ../shared/data/lmo     # real mesh
    python examples/linemod/search.py eggbox --bop-root ../shared/data/lmo  # ADI (symmetric)
    python examples/linemod/search.py phone --dark   # bootstrap ratio 16, as the paper also has
    python examples/linemod/search.py ape --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(prog="examples/linemod/search.py", object_positional=True))
