"""Training budgets for tests that fit a remaining-life model through the commands (seconds, not minutes)."""

TINY = ["--trees", "20", "--members", "1", "--folds", "2", "--network-epochs", "2", "--network-seeds", "2"]
