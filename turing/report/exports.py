"""The report's CSV exports: the votes (long format), the summary and the per-image metrics."""

from turing.report.cache import metric_tables, study_summary
from turing.report.data import Selection, votes_frame

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Text that came from outside: a participant's label (from a URL anyone can type) and scene names (file names).
FREE_TEXT_COLUMNS = ("label", "scene")


def neutralize_formulas(frame):
    """Cells of FREE_TEXT_COLUMNS that a spreadsheet would run as a formula, prefixed with ' so that it shows
    them as text. Identifiers the system made (stimulus tokens, some of which start with "-") and model names
    (checked slugs) are left exact, so that exports still join with the report and with each other."""

    def neutral(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    return frame.assign(**{column: frame[column].map(neutral) for column in FREE_TEXT_COLUMNS if column in frame})


def write_votes_csv(study, target, selection=Selection()):
    """Write the votes export (VOTE_COLUMNS) to a path or file object; returns the number of rows."""
    votes = votes_frame(study, selection)
    neutralize_formulas(votes).to_csv(target, index=False)
    return len(votes)


def write_metrics_csv(study, target, selection=Selection()):
    """Write every generated scored image's fooling rate next to its metrics (metric_correlation.IMAGE_COLUMNS)
    to a path or file object; returns the number of rows. Images nobody judged yet have 0 votes and no rate."""
    images = metric_tables(study, selection)["metric_images_frame"]
    neutralize_formulas(images).to_csv(target, index=False)
    return len(images)


def write_summary_csv(study, target, selection=Selection()):
    """Write the summary export (SUMMARY_COLUMNS) to a path or file object; returns the summary."""
    summary = study_summary(study, selection)
    neutralize_formulas(summary).to_csv(target, index=False)
    return summary
