"""Architecture search of the AAE for LineMOD's phone (see aae.search for the options).

The phone is dark: the paper also reports it with bootstrap ratio 16 (the original AAE's
advice for dark or thin objects). Pass --dark for that.

    python examples/linemod/phone.py [--dark]                        # quick profile, stand-in
    python examples/linemod/phone.py --profile paper --bop-root /data/bop/lm --dark
"""

import sys

from aae.search import main

if __name__ == "__main__":
    dark = "--dark" in sys.argv
    argv = [arg for arg in sys.argv[1:] if arg != "--dark"]
    sys.exit(
        main(
            argv, object_name="phone", defaults={"network.bootstrap_ratio": "16"} if dark else None
        )
    )
