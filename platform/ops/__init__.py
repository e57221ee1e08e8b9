"""Start-up and operations helpers below every layer: environment parsing (ops.env), the extra
processes run_suite starts (ops.processes) and the health probes (ops.health).

Imports nothing of the suite's own apps, so settings, every platform app and every layer above may
use it. (It lived in the `suite` package, the composition root, which lower layers may not import.)
"""
