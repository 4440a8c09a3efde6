"""Shared test helper: run the CLI in-process."""

from __future__ import annotations

import pytest

from scalinglaw.cli import main


def run(capsys, *argv):
    """``(exit code, stdout, stderr)`` of ``scalinglaw ARGV`` run in this process."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err
