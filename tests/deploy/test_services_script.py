"""deploy/local/services.sh judges a service alive by /proc, so `services.sh up` right after a
SIGKILL restarts it instead of taking the dying process for a running one."""

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def alive(pidfile: Path, module: str, tmp_path: Path) -> bool:
    script = f'source "{ROOT}/deploy/local/services.sh"; alive "{pidfile}" "{module}"'
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "LOCAL_DIR": str(tmp_path)}, check=False)
    return done.returncode == 0


def test_a_killed_process_is_dead_at_once_though_kill_0_still_sees_it(tmp_path):
    # This test is the parent and does not reap the child yet, so after SIGKILL it stays a
    # zombie, as a service does until it is reaped: `kill -0` would call it alive.
    child = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pidfile = tmp_path / "svc.pid"
    pidfile.write_text(str(child.pid))
    try:
        assert alive(pidfile, "http.server", tmp_path)
        assert not alive(pidfile, "ingest", tmp_path)  # a recycled PID running something else
        child.send_signal(signal.SIGKILL)
        os.kill(child.pid, 0)  # still there for kill -0 ...
        assert not alive(pidfile, "http.server", tmp_path)  # ... but not alive
    finally:
        child.kill()
        child.wait()
    assert not alive(pidfile, "http.server", tmp_path)  # reaped: no /proc entry at all
    assert not alive(tmp_path / "missing.pid", "http.server", tmp_path)
