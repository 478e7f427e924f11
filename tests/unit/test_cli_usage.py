"""The CLI refusing a command itself exits 125, as Docker's does (scripts written for it test for that)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from swarmpy.cli import main


@pytest.mark.parametrize("args, said", [
    (["service", "create", "--bogus", "x"], "No such option '--bogus'"),
    (["service", "scale"], "Missing argument 'PAIRS...'"),
    (["node", "ls", "--format", "bad"], "Invalid value for '--format'"),
])
def test_a_command_the_cli_refuses_exits_125(args, said):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 125
    assert said in result.output
