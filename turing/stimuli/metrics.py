"""Each generated stimulus's colorization metrics against its scene's real stimulus, kept on Stimulus.metrics.

The metrics are colorization.metrics.image_metrics (PSNR, SSIM, ab error, AuC, colourfulness) of the stored,
normalised PNGs, the very pixels participants judged: a generated stimulus against the real stimulus of the
same scene, both at the study's stimulus size. import_study computes them when it stores the stimuli, since a
study's images never change and the report is recomputed after every vote. How they are stored as JSON is
turing.analysis.metric_values.
"""

from itertools import groupby
from operator import attrgetter

import pandas as pd

from colorization.errors import UserError
from colorization.metrics import image_metrics
from turing.analysis.metric_values import METRICS, from_stored, to_stored
from turing.models import Stimulus, Study
from turing.stimuli.audit import describe
from turing.stimuli.normalize import stored_rgb
from turing.vocabulary import CATCH, REAL, SCORED


class MetricsError(UserError):
    """A stimulus could not be measured; the message names the study, scene and model."""


def fill_metrics(study: Study) -> int:
    """Measure every generated stimulus of ``study`` that has no metrics yet against its scene's real
    stimulus, and save them; return how many were measured. MetricsError, naming the stimulus, when one has
    no real stimulus of its scene or an image cannot be read or compared; nothing is saved then."""
    pending = study.stimuli.filter(metrics__isnull=True).exclude(source__in=(REAL, CATCH)).order_by("scene", "source")
    reals = {
        stimulus.scene: stimulus for stimulus in study.stimuli.filter(source=REAL, scene__in=pending.values("scene"))
    }
    measured = []
    for scene, group in groupby(pending, key=attrgetter("scene")):
        stimuli = list(group)
        real = reals.get(scene)
        if real is None:
            raise MetricsError(
                f"study {study.slug!r}: {describe(stimuli[0])} has no real stimulus of its scene to be measured against"
            )
        target = _pixels(study, real)
        for stimulus in stimuli:
            try:
                scores = image_metrics(_pixels(study, stimulus), target)
            except ValueError as error:
                raise MetricsError(
                    f"study {study.slug!r}: {describe(stimulus)} against its real photo: {error}"
                ) from None
            stimulus.metrics = to_stored(scores)
            measured.append(stimulus)
    Stimulus.objects.bulk_update(measured, ["metrics"], batch_size=500)
    return len(measured)


def _pixels(study, stimulus):
    try:
        return stored_rgb(stimulus)
    except OSError as error:  # a missing or unreadable file (Pillow's UnidentifiedImageError is an OSError)
        raise MetricsError(f"study {study.slug!r}: {describe(stimulus)}: cannot read the image ({error})") from None


def stored_metrics_frame(study) -> pd.DataFrame:
    """Every generated stimulus of ``study``'s scored pool: stimulus (token), scene, model and its stored
    metrics, as turing.analysis.metric_correlation.image_table takes them."""
    rows = study.stimuli.filter(pool=SCORED).exclude(source__in=(REAL, CATCH)).order_by("source", "scene")
    records = [
        {"stimulus": token, "scene": scene, "model": source, **(from_stored(metrics) if metrics else {})}
        for token, scene, source, metrics in rows.values_list("token", "scene", "source", "metrics")
    ]
    return pd.DataFrame.from_records(records, columns=["stimulus", "scene", "model", *METRICS]).astype(
        dict.fromkeys(METRICS, float)
    )
