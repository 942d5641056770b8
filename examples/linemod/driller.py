"""Architecture search of the AAE for LineMOD's driller (see aae.search for the options).

python examples/linemod/driller.py                                  # quick profile, stand-in
python examples/linemod/driller.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes
python examples/linemod/driller.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="driller"))
