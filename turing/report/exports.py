"""The report's CSV exports: the votes (long format, streamed from the database), the summary and the
per-image metrics."""

import codecs
import csv
import io
from contextlib import nullcontext
from os import PathLike

from django.db import connection
from django.db.models import Case, CharField, F, Func, Q, Value, When
from django.db.models.functions import Cast, Concat, Left, NullIf
from django.db.models.lookups import In

from turing.report.cache import metric_tables, study_summary
from turing.report.data import Selection, scored_trials
from turing.vocabulary import EXPERTISE_WORD, REAL

# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Cells a spreadsheet may take for a formula: text that came from outside (a participant's label, from a URL
# anyone can type; scene names, from file names) and stimulus tokens (random, URL-safe: about one in 64 starts
# with "-", which a spreadsheet shows as an error or a number). A token is neutralised alike in every export, so
# that the exports still join with each other.
FREE_TEXT_COLUMNS = ("label", "scene", "stimulus")
# Rows fetched and written at a time where the database cannot write CSV itself, and bytes of the database's own
# CSV sent at a time.
CSV_BATCH = 10_000
CSV_CHUNK_BYTES = 1 << 18


def neutralize_formulas(frame):
    """Cells of FREE_TEXT_COLUMNS that a spreadsheet would run as a formula, prefixed with ' so that it shows
    them as text. Model names (checked slugs) are left exact."""

    def neutral(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    return frame.assign(**{column: frame[column].map(neutral) for column in FREE_TEXT_COLUMNS if column in frame})


def _neutral(field):
    """``field`` as FREE_TEXT_COLUMNS are exported: prefixed with ' if a spreadsheet would run it as a formula
    (neutralize_formulas, in SQL)."""
    formula = In(Left(F(field), 1), FORMULA_STARTS)
    return Case(When(formula, then=Concat(Value("'"), F(field))), default=F(field), output_field=CharField())


class UTCText(Func):
    """A stored time as ISO 8601 text in UTC ("2026-11-26 10:00:00.123456+00:00"), as the database gives it:
    SQLite keeps UTC text without an offset, PostgreSQL a timestamptz."""

    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(%(expressions)s || '+00:00')", **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "(to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00')"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _votes_query(study, selection):
    """The votes export as one SELECT, every column computed by the database as the CSV shows it (VOTE_COLUMNS,
    in votes_frame's order), so that the rows go from the database to the file without pandas; returns the
    column names, the SQL and its parameters. Empty text is NULL, which both databases' CSV writers leave
    empty."""
    real = Q(answer=REAL)
    shows_real = Q(stimulus__source=REAL)
    columns = {
        "protocol": Value(study.protocol, output_field=CharField()),
        "participant": F("participant_id"),
        "label": NullIf(_neutral("participant__label"), Value("")),
        "cohort": F("participant__cohort"),
        "participant_kind": F("participant__kind"),
        "group": F("participant__group"),
        "kind": F("kind"),
        "position": F("position"),
        "stimulus": _neutral("stimulus__token"),
        "scene": _neutral("stimulus__scene"),
        "source": F("stimulus__source"),
        "answer": F("answer"),
        "correct": Case(
            When((real & shows_real) | (~real & ~shows_real), then=Value("True")),
            default=Value("False"),
            output_field=CharField(),
        ),
        "response_ms": F("response_ms"),
        "answered_at": UTCText("answered_at"),
        "expertise": Case(
            *(When(participant__expertise=stored, then=Value(word)) for stored, word in EXPERTISE_WORD.items()),
            output_field=CharField(),
        ),
        "exposure_ms": F("exposure_ms"),
        "achieved_exposure_ms": F("achieved_exposure_ms"),
        "generated_side": NullIf(F("generated_side"), Value("")),
        "button_order": NullIf(F("participant__button_order"), Value("")),
        "image_css_px": Case(
            When(
                image_css_width__isnull=False,
                image_css_height__isnull=False,
                then=Concat(Cast("image_css_width", CharField()), Value("x"), Cast("image_css_height", CharField())),
            ),
            output_field=CharField(),
        ),
        "device_pixel_ratio": F("device_pixel_ratio"),
    }
    # Annotations may not take the name of a field of Trial: each column is selected under an alias of its own.
    trials = (
        scored_trials(study, selection)
        .annotate(**{f"csv_{name}": expression for name, expression in columns.items()})
        .order_by("participant__started_at", "participant_id", "position")
        .values_list(*(f"csv_{name}" for name in columns))
    )
    return list(columns), *trials.query.sql_with_params()


def votes_csv(study, selection=Selection()):
    """The votes export (VOTE_COLUMNS, one row per answered trial that ``selection`` keeps) as chunks of CSV
    text, streamed from the database: PostgreSQL writes the CSV itself (COPY), other databases' rows are
    written here a batch at a time. Memory stays that of one chunk whatever the number of votes."""
    header, sql, params = _votes_query(study, selection)
    yield ",".join(header) + "\n"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY sends a message per row: joined into chunks, else the response would handle each row alone.
            decoder = codecs.getincrementaldecoder("utf-8")()
            chunk = bytearray()
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                for block in copy:
                    chunk += block
                    if len(chunk) >= CSV_CHUNK_BYTES:
                        yield decoder.decode(chunk)
                        chunk.clear()
            yield decoder.decode(chunk, final=True)
            return
        cursor.execute(sql, params)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        while rows := cursor.fetchmany(CSV_BATCH):
            writer.writerows(rows)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()


def write_votes_csv(study, target, selection=Selection()):
    """Write the votes export (votes_csv) to a path or text file object; returns the number of rows."""
    with (
        open(target, "w", encoding="utf-8", newline="")
        if isinstance(target, (str, PathLike))
        else nullcontext(target) as file
    ):
        file.writelines(votes_csv(study, selection))
    return scored_trials(study, selection).count()


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
