"""The `posedet` command: every subcommand is listed; a missing step says so instead of a traceback."""
import subprocess
import sys

import pytest

from posedet import cli


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_unimplemented_step_exits_2_with_message(monkeypatch, capsys):
    monkeypatch.setitem(cli.SUBCOMMANDS, "report", ("posedet.no_such_module", "x"))
    with pytest.raises(SystemExit) as e:
        cli.main(["report"])
    assert e.value.code == 2
    assert "not implemented yet" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "posedet", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "upper-bound" in out.stdout
