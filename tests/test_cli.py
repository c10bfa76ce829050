"""The `treasure` command: --help everywhere, conversions from the shell, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from treasure_hf import read_events
from treasure_hf.cli import build_parser, main
from treasure_hf.data.pcdf import write_pcdf
from treasure_hf.data.synthetic import random_events


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 100


def test_conversions_from_the_shell(tmp_path):
    ev = random_events(500, 3, sub_groups=("constituents",))
    write_pcdf(tmp_path / "in.pcdf", ev, events_per_part=200)
    treasure = [sys.executable, "-m", "treasure_hf.cli"]

    def run(*a: str) -> subprocess.CompletedProcess:
        return subprocess.run([*treasure, *a], capture_output=True, text=True, timeout=300)

    out = run("-q", "pcdf-to-h5", str(tmp_path / "in.pcdf"), str(tmp_path / "a.h5"), "--max-objects", "jets=4")
    assert out.returncode == 0, out.stderr
    assert read_events(tmp_path / "a.h5")["common/jets/pt"].shape == (500, 4)
    out = run("-q", "h5-to-pcdf", str(tmp_path / "a.h5"), str(tmp_path / "b.pcdf"), "--step", "150")
    assert out.returncode == 0, out.stderr
    assert read_events(tmp_path / "b.pcdf").equals(read_events(tmp_path / "a.h5"))
    assert run("validate", str(tmp_path / "b.pcdf")).returncode == 0
    out = run("pcdf-to-h5", str(tmp_path / "missing.pcdf"), str(tmp_path / "c.h5"))
    assert out.returncode == 2 and "missing.pcdf" in out.stderr
    assert not (tmp_path / "c.h5").exists()
