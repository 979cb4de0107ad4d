"""A study's gallery for staff: per scene, grayscale input | each model | real, with each image's votes.

The caption gives each source's judged-real rate over all its images with the report's interval (over
participants and images). Each image shows its judged-real share and vote count from the report's cached
tables (cache.report_tables, from statistics.per_image_table: answered scored trials of people, both
groups pooled), so the gallery reads the votes no second time and agrees with the report's default view
(bots left out, nobody excluded). Rows can be sorted by the
images of one source that are judged real most often ("fools most" for a model). The grayscale column is
never a stimulus: it is computed on demand from the stored real stimulus (colorization.images.grayscale_view)
and shown to staff only.

The same gallery is available as a matplotlib figure (colorization.gallery.gallery_figure, which is
free of torch) for a poster or paper.
"""

import io
import math
from dataclasses import dataclass, field

from PIL import Image

from colorization.images import grayscale_view
from turing.analysis import statistics as st
from turing.models import Pool
from turing.report import cache
from turing.vocabulary import REAL

GRAYSCALE = "grayscale"
FIGURE_FORMATS = {"png": "image/png", "pdf": "application/pdf"}
FIGURE_DPI = 100


@dataclass(frozen=True)
class GalleryImage:
    """One stimulus with its votes; share is None while it has no votes."""

    stimulus: object
    votes: int = 0
    judged_real: int = 0

    @property
    def share(self):
        return self.judged_real / self.votes if self.votes else None


@dataclass
class GalleryRow:
    """One scene: its real stimulus and each model's version (None where a model has none)."""

    scene: str
    real: GalleryImage | None
    generated: dict = field(default_factory=dict)

    def image(self, source):
        return self.real if source == REAL else self.generated.get(source)

    @property
    def cells(self):
        """(source, image or None) in column order: each model, then real."""
        return [*self.generated.items(), (REAL, self.real)]


def gallery_sources(study) -> list[str]:
    """The gallery's image columns after the grayscale one, each also a sort key: each model, then "real"."""
    return [*study.model_names, REAL]


def check_sort(study, sort):
    """sort itself (None: scene order); ValueError when it is not one of gallery_sources(study)."""
    sources = gallery_sources(study)
    if sort is not None and sort not in sources:
        raise ValueError(f"unknown sort {sort!r}; choose one of {', '.join(sources)}")
    return sort


def gallery_rows(study, sort=None) -> list[GalleryRow]:
    """Rows by scene name, or with sort=<source> by that source's judged-real share (highest first).

    Within equal shares, more votes first; images without votes go last. An unknown sort raises ValueError.
    """
    check_sort(study, sort)
    counts = cache.report_tables(study)["image_counts"]
    models = study.model_names
    by_scene: dict[str, GalleryRow] = {}
    # Practice and catch scenes are never scored, so they have no votes to compare.
    for stimulus in study.stimuli.filter(pool=Pool.SCORED).order_by("scene", "source"):
        image = GalleryImage(stimulus, *counts.get(stimulus.token, (0, 0)))
        row = by_scene.setdefault(stimulus.scene, GalleryRow(stimulus.scene, None, dict.fromkeys(models)))
        if stimulus.source == REAL:
            row.real = image
        else:
            row.generated[stimulus.source] = image
    rows = list(by_scene.values())
    if sort is not None:
        rows.sort(key=lambda row: _fools_most_key(row.image(sort)))
    return rows


def _fools_most_key(image):
    if image is None or image.share is None:
        return (1, 0.0, 0)
    return (0, -image.share, -image.votes)


def grayscale_png(real_stimulus) -> bytes:
    """The real stimulus's lightness as a grayscale PNG: what the models were given."""
    buffer = io.BytesIO()
    grayscale_view(_open(real_stimulus)).save(buffer, format="PNG")
    return buffer.getvalue()


def caption(study, sort=None) -> str:
    """Figure caption: what the numbers are, how the rows are ordered, and how the scenes were chosen."""
    order = f"sorted by {sort}'s judged-real share" if sort else "sorted by scene name"
    text = (
        f"{study.title}: per scene, grayscale input | {' | '.join(study.model_names)} | real. "
        f"Under each image: share of votes judging it real (n = votes; scored trials, all groups); {order}."
    )
    overall = _overall_rates(study)
    if overall:
        text += f" Over all images (treatment group, 95% intervals over participants and images): {overall}."
    chosen = study.manifest.get("description") if isinstance(study.manifest, dict) else None
    return f"{text} {chosen}" if chosen else text


def _overall_rates(study) -> str:
    """ "perceptual 31% real (22–41%), ..." for every source with votes in the treatment group."""
    summary = cache.study_summary(study)
    rows = summary[(summary["group"] == st.TREATMENT) & (summary["votes"] > 0)]
    return ", ".join(
        f"{row.source} {100 * row.rate:.0f}% real ({_percent_interval(row.ci_low, row.ci_high)})"
        for row in rows.itertuples()
    )


def _percent_interval(low, high) -> str:
    return "interval undefined" if math.isnan(low) or math.isnan(high) else f"{100 * low:.0f}–{100 * high:.0f}%"


def study_gallery_figure(study, sort=None, limit=None):
    """The gallery as a matplotlib Figure, one row per scene (the first `limit` rows when given)."""
    # Imported here so that loading the staff URLs does not load matplotlib.
    from colorization.gallery import gallery_figure

    rows = gallery_rows(study, sort)[:limit]
    figure_rows = []
    for row in rows:
        images, labels = [], []
        if row.real is not None:
            images.append(grayscale_view(_open(row.real.stimulus)))
            labels.append(GRAYSCALE)
        for source, image in row.cells:
            if image is not None:
                images.append(_open(image.stimulus))
                labels.append(f"{source}\n{_votes_label(image)}")
        figure_rows.append({"title": row.scene, "images": images, "labels": labels})
    return gallery_figure(figure_rows, caption(study, sort))


def figure_bytes(study, fmt, sort=None, limit=None) -> bytes:
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; choose one of {', '.join(FIGURE_FORMATS)}")
    buffer = io.BytesIO()
    study_gallery_figure(study, sort, limit).savefig(buffer, format=fmt, dpi=FIGURE_DPI)
    return buffer.getvalue()


def _votes_label(image: GalleryImage) -> str:
    if image.share is None:
        return "no votes"
    return f"{100 * image.share:.0f}% real (n={image.votes})"


def _open(stimulus) -> Image.Image:
    with stimulus.image.storage.open(stimulus.image.name, "rb") as file:
        image = Image.open(file)
        image.load()
    return image.convert("RGB")
