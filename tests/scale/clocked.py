"""Run gunicorn with the clock shifted: ``python -m tests.scale.clocked SECONDS GUNICORN-ARGS...``.

The app reads the time only from Python's clock (contract section 2), so a server whose clock runs
SECONDS behind (or ahead of) the real one is the app as deployed, living at another instant. The
shift is applied in the master before it forks, so every worker inherits it, and it ticks: each
process's clock is the real one plus SECONDS, the same in every server started this way.
"""
import sys
from datetime import datetime, timedelta, timezone

import time_machine
from gunicorn.app.wsgiapp import run


def main() -> None:
    shift, *arguments = sys.argv[1:]
    destination = datetime.now(timezone.utc) + timedelta(seconds=float(shift))
    sys.argv = ["gunicorn", *arguments]
    with time_machine.travel(destination, tick=True):
        run()


if __name__ == "__main__":
    main()
