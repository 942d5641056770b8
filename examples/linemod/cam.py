"""Architecture search of the AAE for LineMOD's cam (see aae.search for the options).

python examples/linemod/cam.py                                  # quick profile, stand-in
python examples/linemod/cam.py --profile paper --bop-root /data/bop/lm
"""

import sys

from aae.search import main

if __name__ == "__main__":
    sys.exit(main(object_name="cam"))
