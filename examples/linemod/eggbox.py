"""Architecture search of the AAE for LineMOD's eggbox (see aae.search for the options).

python examples/linemod/eggbox.py                                  # quick profile, stand-in
python examples/linemod/eggbox.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes, ADI (symmetric)
python examples/linemod/eggbox.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="eggbox"))
