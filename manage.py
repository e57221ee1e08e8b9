#!/usr/bin/env python
"""Django's command-line entry point for Suite.

platform/ is a source root, not a package: it is appended to sys.path *after* the standard
library so that `import platform` keeps meaning the standard-library module.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    for entry in (str(ROOT), str(ROOT / "platform")):
        if entry not in sys.path:
            sys.path.append(entry)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
