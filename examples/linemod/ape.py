"""Architecture search of the AAE for LineMOD's ape (see aae.search for the options).

python examples/linemod/ape.py                                  # quick profile, stand-in
python examples/linemod/ape.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes
python examples/linemod/ape.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="ape"))
