"""`cosmic validate`: compare cosmic's predictions with published training runs and collective benchmarks.

``validate_file(path)`` reads a training-runs or collectives CSV (the kind is chosen by its header), turns every
row into a configuration from the content of its cells (see :mod:`cosmic.validate.mapping`), simulates it and
compares the prediction with the row's measured metric. Rows that cannot be compared carry the reason.
"""

from __future__ import annotations

from cosmic.validate.report import Report, percentile, validate_file
from cosmic.validate.table import Kind, read_table
from cosmic.validate.training import Comparison

__all__ = ["Comparison", "Kind", "Report", "percentile", "read_table", "validate_file"]
