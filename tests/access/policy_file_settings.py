"""Project settings with ACCESS_POLICY_FILE taken from the environment, for the subprocess tests
(suite.settings may read the variable itself; this keeps the tests independent of that)."""

import os

from suite.settings import *  # noqa: F403

ACCESS_POLICY_FILE = os.environ["ACCESS_POLICY_FILE"]
