"""Run `evaluate.py` on every development set and print one table.

python benchmark.py [--eval-dir DIR] [--model NAME] [--threshold N] [--json OUT]
"""

import sys

from evaluate import main

if __name__ == "__main__":
    sys.exit(main(["--all", *sys.argv[1:]]))
