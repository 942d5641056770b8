"""Architecture search of the AAE for LineMOD's duck (see aae.search for the options).

python examples/linemod/duck.py                                  # quick profile, stand-in
python examples/linemod/duck.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes
python examples/linemod/duck.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="duck"))
