"""The shipped systemd unit is valid and hardened (needs systemd-analyze; skipped without it)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "callswitch.service"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def local_unit(tmp_path: Path) -> Path:
    """The unit with its binaries pointing at this checkout's, so verify can check they exist."""
    callswitch = Path(sys.executable).with_name("callswitch")
    kill = shutil.which("kill") or "/bin/kill"
    text = UNIT.read_text().replace("/opt/callswitch/venv/bin/callswitch", str(callswitch))
    text = text.replace("/bin/kill", kill)
    out = tmp_path / "callswitch.service"
    out.write_text(text)
    return out


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    proc = subprocess.run([ANALYZE, "verify", str(local_unit(tmp_path))], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if "callswitch.service" in line]
    assert problems == []


def test_unit_exposure_is_at_most_3(tmp_path: Path) -> None:
    proc = subprocess.run([ANALYZE, "security", "--offline=true", str(local_unit(tmp_path))],
                          capture_output=True, text=True, check=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d)", proc.stdout)
    assert m, proc.stdout[-500:] + proc.stderr
    assert float(m.group(1)) <= 3.0


def test_unit_essentials() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "EnvironmentFile=-/etc/callswitch/callswitch.env",
                 "User=callswitch", "RestartPreventExitStatus=78", "SystemCallFilter=@system-service"):
        assert line in text
