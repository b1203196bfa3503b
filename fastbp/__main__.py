"""``python -m fastbp``: the ``fastbp`` command line (see `fastbp.cli`)."""
from fastbp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
