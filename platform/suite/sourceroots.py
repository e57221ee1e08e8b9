"""Put the project root and the platform/ source root on sys.path (after the standard library).

Imported first by every entry point that may be started without manage.py (wsgi, asgi, celery).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def install() -> None:
    for entry in (str(ROOT), str(ROOT / "platform")):
        if entry not in sys.path:
            sys.path.append(entry)


install()
