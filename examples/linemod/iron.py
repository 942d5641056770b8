"""Architecture search of the AAE for LineMOD's iron (see aae.search for the options).

python examples/linemod/iron.py                                  # quick profile, stand-in
python examples/linemod/iron.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="iron"))
