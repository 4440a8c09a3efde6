"""``python -m scalinglaw.validate``: the ``validate`` subcommand on its own."""

from .cli import main

raise SystemExit(main())
