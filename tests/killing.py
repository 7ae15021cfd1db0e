"""Kill a run midway: start a script that prints 'started' once its log holds something,
let it run on, then SIGKILL it (tests of what a killed run leaves in its log)."""

import subprocess
import sys
import time


def kill_after_start(script: str, seconds: float) -> None:
    """Run ``script`` in a new interpreter; ``seconds`` after it prints 'started', kill it."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        time.sleep(seconds)
    finally:
        proc.kill()
        proc.wait(timeout=60)
