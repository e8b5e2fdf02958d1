"""Entry point of the fork server: put the `jail` package on the path, then forget the path.

Run as `python -I -S start.py --base DIR`; -I leaves the script's own directory off sys.path.
"""

import os
import sys

if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(_here))
    from jail.server import main

    sys.path.remove(os.path.dirname(_here))
    main(sys.argv[1:])
