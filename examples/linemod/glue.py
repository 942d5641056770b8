"""Architecture search of the AAE for LineMOD's glue (see aae.search for the options).

python examples/linemod/glue.py                                  # quick profile, stand-in
python examples/linemod/glue.py --bop-root ../shared/data/lmo   # real mesh, synthetic scenes, ADI (symmetric)
python examples/linemod/glue.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="glue"))
