"""Helper process for the concurrency test: append events to one chain, as a web or worker process would.

Usage: python append_events.py WRITER_ID COUNT CHAIN SIGNAL_DIR
Waits for SIGNAL_DIR/go after announcing itself (SIGNAL_DIR/ready-WRITER_ID), so all writers start together.
Database and settings come from the environment (DATABASE_URL, SUITE_VAR_DIR), as for manage.py.
"""

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for entry in (str(ROOT), str(ROOT / "platform")):
    if entry not in sys.path:
        sys.path.append(entry)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")


def main() -> None:
    import django

    django.setup()
    from audit.services import record

    writer, count, chain, signal_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    (signal_dir / f"ready-{writer}").touch()
    deadline = time.monotonic() + 120
    while not (signal_dir / "go").exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal within 120 s")
        time.sleep(0.01)
    for number in range(count):
        record(
            actor=f"task:tests.writer-{writer}",
            action="test.append",
            resource_type="counter",
            resource_id=f"{writer}-{number}",
            outcome="succeeded",
            payload={"writer": writer, "number": number},
            chain=chain,
        )


if __name__ == "__main__":
    main()
