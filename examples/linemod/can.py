"""Architecture search of the AAE for LineMOD's can (see aae.search for the options).

python examples/linemod/can.py                                  # quick profile, stand-in
python examples/linemod/can.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes
python examples/linemod/can.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="can"))
