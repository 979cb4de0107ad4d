"""The colorization metrics a stimulus stores, as names and as JSON values, without Django: the analysis
(turing.analysis.metric_correlation) reads them where no model is imported.

JSON has no infinity, and PostgreSQL's jsonb refuses one: the PSNR of a stimulus identical to its photo
(+inf) is stored as null and read back as +inf (to_stored, from_stored).
"""

import math

from colorization.metrics import METRIC_COLUMNS

# colorization.metrics.image_metrics' scores, in its column order.
METRICS = METRIC_COLUMNS


def to_stored(scores: dict[str, float]) -> dict[str, float | None]:
    """image_metrics' scores as JSON can hold them (an infinite PSNR as null)."""
    return {**scores, "psnr": None if scores["psnr"] == math.inf else scores["psnr"]}


def from_stored(metrics: dict[str, float | None]) -> dict[str, float]:
    """Stored metrics as image_metrics gave them: null, which to_stored writes only for PSNR, back to +inf."""
    return {name: math.inf if value is None else value for name, value in metrics.items()}
