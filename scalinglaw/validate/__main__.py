"""``python -m scalinglaw.validate``: the ``validate`` subcommand on its own (warnings kept off the terminal, as in
the main CLI)."""

import warnings

import numpy as np

from .cli import main

with warnings.catch_warnings(), np.errstate(all="ignore"):
    warnings.simplefilter("ignore")
    code = main()
raise SystemExit(code)
