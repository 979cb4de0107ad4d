"""A study's votes as pandas tables, and the report built from them (staff pages and commands share it)."""

import math
import re
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, Exists, IntegerField, Max, OuterRef, Q, Sum, When

from turing.analysis import metric_correlation, power
from turing.analysis import statistics as st
from turing.analysis.tally import Tally, as_tally
from turing.models import REAL, Participant, Pool, Trial
from turing.participant.crowd import timed_out
from turing.participant.enrollment import pool_scenes
from turing.protocols import protocol_of
from turing.stimuli.metrics import stored_metrics_frame

# The votes export's long format, one row per answered trial. `participant` is the participant's stable id
# (their primary key); `label` is the participant_label / PROLIFIC_PID they joined with ("" if none), kept
# apart so that statistics never merge people who share a label. `cohort` is how they came (poster, kiosk,
# prolific, mturk, link; turing.participant.crowd). `participant_kind` is person or bot; `kind`
# is scored, practice or catch (the default export holds scored trials only); `position` is the order of
# presentation, practice first. `stimulus` is the image's opaque token, which names no file, model or scene.
# `protocol` is the study's (turing.protocols); `exposure_ms` the exposure it asked (empty: no limit) and
# `achieved_exposure_ms` the one the browser measured. Under 2afc, `stimulus` is the pair's generated image,
# `generated_side` (left/right) where it was, and `answer` what it was judged: "real" when it was picked.
VOTE_COLUMNS = [
    "protocol",
    "participant",
    "label",
    "cohort",
    "participant_kind",
    "group",
    "kind",
    "position",
    "stimulus",
    "scene",
    "source",
    "answer",
    "correct",
    "response_ms",
    "answered_at",
    "expertise",
    "exposure_ms",
    "achieved_exposure_ms",
    "generated_side",
]
SUMMARY_COLUMNS = [
    "source",
    "group",
    "votes",
    "judged_real",
    "rate",
    "ci_low",
    "ci_high",
    "wilson_low",
    "wilson_high",
    "participants",
    "hype_infinity",
    "hype_low",
    "hype_high",
]
EXPERTISE_ANSWERS = {True: "yes", False: "no", None: None}
# Below this many participants and this many scenes at once, the report warns that p-values are optimistic.
FEW = 20
# An achieved exposure further than this from the one asked is flagged: more than one frame at 60 Hz.
EXPOSURE_TOLERANCE_MS = 17
# Rows the report lists of images and of participants; the exports have them all.
REPORT_ROWS = 50
# A bound on how long a hand edit the cache key cannot see (say, in the database shell) stays unseen.
REPORT_CACHE_SECONDS = 600
# How many scene names the "how stimuli were chosen" paragraph lists before it only counts them.
MANIFEST_LIST_PREVIEW = 10
# Longer manifest values are cut here: the report says how stimuli were made, the admin keeps the whole record.
MANIFEST_TEXT_LIMIT = 160
SCORED, PRACTICE, CATCH = Trial.Kind.SCORED.value, Trial.Kind.PRACTICE.value, Trial.Kind.CATCH.value
ALL_KINDS = tuple(Trial.Kind.values)
PERSON = Participant.Kind.PERSON.value
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Text that came from outside: a participant's label (from a URL anyone can type) and scene names (file names).
FREE_TEXT_COLUMNS = ("label", "scene")


@dataclass(frozen=True)
class Selection:
    """Which participants and trials an analysis uses. The default is what a result should rest on:
    people only (no rehearsal bots), scored trials only, everyone who took part. Participants who did not
    finish within the study's time limit (returned or timed out on a crowd platform) are always left out, and
    listed by the report (timed_out_rows). ``cohort`` keeps only the participants who came one way (the
    report's breakdown by cohort)."""

    include_bots: bool = False
    exclude_failed_checks: bool = False
    kinds: tuple = (SCORED,)
    cohort: str | None = None

    def participants(self, study):
        participants = study.participants.exclude(timed_out(study))
        if not self.include_bots:
            participants = participants.filter(kind=PERSON)
        if self.exclude_failed_checks:
            participants = participants.exclude(pk__in=failed_check_ids(study))
        if self.cohort is not None:
            participants = participants.filter(cohort=self.cohort)
        return participants


def failed_check_ids(study):
    """Participants who called an attention check (an obviously wrong colorization) real at least once."""
    return Trial.objects.filter(participant__study=study, kind=CATCH, answer=REAL).values("participant")


def _scored(study, selection):
    return Trial.objects.filter(participant__in=selection.participants(study), kind__in=selection.kinds).exclude(
        answer=""
    )


def _fetch(queryset):
    """The rows of a values_list queryset through a raw cursor: the ORM's SQL without its per-row Python
    converters, which cost 15 times the fetch itself on 10^6 votes. Values come as the driver gives them
    (SQLite: datetimes as text, which pandas parses in one vectorized call)."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _lookup(ids, table_ids):
    """Positions of ``ids`` in ``table_ids``, and which ids are there at all (a participant deleted between
    the two queries is not)."""
    if not len(table_ids):
        return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
    order = np.argsort(table_ids)
    found = order[np.searchsorted(table_ids, ids, sorter=order).clip(max=len(order) - 1)]
    return found, table_ids[found] == ids


def _people_and_images(study, selection):
    people = pd.DataFrame.from_records(
        list(selection.participants(study).values_list("pk", "label", "cohort", "kind", "group", "expertise")),
        columns=["participant", "label", "cohort", "participant_kind", "group", "expertise"],
    )
    images = pd.DataFrame.from_records(
        list(study.stimuli.values_list("pk", "token", "scene", "source")), columns=["id", "stimulus", "scene", "source"]
    )
    return people, images


def votes_frame(study, selection=Selection()):
    """Every answered trial of ``study`` that ``selection`` keeps, in the long format of VOTE_COLUMNS."""
    rows = _fetch(
        _scored(study, selection)
        .order_by("participant__started_at", "participant_id", "position")
        .values_list(*TRIAL_COLUMNS)
    )
    trials = pd.DataFrame.from_records(rows, columns=["participant", *TRIAL_COLUMNS[1:]])
    people, images = _people_and_images(study, selection)
    person_at, present = _lookup(trials["participant"].to_numpy(), people["participant"].to_numpy())
    trials, person_at = trials[present].reset_index(drop=True), person_at[present]
    person = people.iloc[person_at]
    image = images.iloc[_lookup(trials["stimulus_id"].to_numpy(), images["id"].to_numpy())[0]]
    frame = pd.DataFrame(
        {
            "protocol": study.protocol,
            "participant": trials["participant"].astype("int64"),
            **{column: person[column].to_numpy() for column in ("label", "cohort", "participant_kind", "group")},
            "kind": trials["kind"],
            "position": trials["position"].astype("int64"),
            **{column: image[column].to_numpy() for column in ("stimulus", "scene", "source")},
            "answer": trials["answer"],
            "correct": (trials["answer"].to_numpy() == REAL) == (image["source"].to_numpy() == REAL),
            "response_ms": trials["response_ms"].astype("Int64"),
            "answered_at": pd.to_datetime(trials["answered_at"], utc=True, format="ISO8601"),
            "expertise": person["expertise"].map(EXPERTISE_ANSWERS).to_numpy(),
            "exposure_ms": trials["exposure_ms"].astype("Int64"),
            "achieved_exposure_ms": trials["achieved_exposure_ms"].astype("Int64"),
            "generated_side": trials["generated_side"],
        },
        index=trials.index,
    )
    return frame[VOTE_COLUMNS]


def exposure_flags(votes):
    """The votes whose achieved exposure differs from the one asked by more than EXPOSURE_TOLERANCE_MS (one
    frame at 60 Hz: a background tab, a busy device, a slow display), and how many trials were measured."""
    measured = votes[votes["exposure_ms"].notna() & votes["achieved_exposure_ms"].notna()]
    off = (measured["achieved_exposure_ms"] - measured["exposure_ms"]).abs() > EXPOSURE_TOLERANCE_MS
    flagged = measured[off.to_numpy(dtype=bool)]
    return {
        "measured": len(measured),
        "unmeasured": int(votes["exposure_ms"].notna().sum()) - len(measured),
        "flagged": len(flagged),
        "rows": records(
            flagged[["participant", "label", "kind", "position", "source", "exposure_ms", "achieved_exposure_ms"]].head(
                REPORT_ROWS
            )
        ),
    }


# The trial fields votes_frame reads, after the participant's id.
TRIAL_COLUMNS = (
    "participant_id",
    "stimulus_id",
    "kind",
    "position",
    "answer",
    "response_ms",
    "answered_at",
    "exposure_ms",
    "achieved_exposure_ms",
    "generated_side",
)


def pilot_estimate(study, seed=0):
    """power.PilotEstimate of a pilot study: its people's scored votes, and its whole pool of scored scenes
    (a short pilot's votes may not reach them all)."""
    return power.estimate_sds(votes_frame(study), seed=seed, scenes=pool_scenes(study)[Pool.SCORED])


def study_tally(study, selection=Selection()):
    """The Tally of the scored votes ``selection`` keeps, fetched as three integers per vote."""
    selection = replace(selection, kinds=(SCORED,))
    trials = _scored(study, selection).annotate(
        judged_real=Case(When(answer=REAL, then=1), default=0, output_field=IntegerField())
    )
    rows = _fetch(trials.order_by().values_list("participant_id", "stimulus_id", "judged_real"))
    votes = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=3 * len(rows)).reshape(-1, 3)
    del rows
    people, images = _people_and_images(study, selection)
    person, present = _lookup(votes[:, 0], people["participant"].to_numpy())
    votes, person = votes[present], person[present]
    return Tally.from_codes(
        person,
        _lookup(votes[:, 1], images["id"].to_numpy())[0],
        votes[:, 2],
        people[["participant", "label", "group", "expertise"]],
        images[["stimulus", "scene", "source"]],
    )


def summary_frame(votes, models=()):
    """One row per source (`real` or a model) and group (`treatment`, `control`), from scored trials only
    (a votes table with a `kind` column, such as `export_votes --all`, has its practice and catch rows dropped).

    rate = judged_real / votes with its crossed interval ci_low/ci_high (participants and images both
    sampled; see turing.analysis.crossed) and the votes-independent Wilson interval wilson_low/wilson_high, and for
    models HYPE-infinity with its crossed interval. ``models`` adds zero-vote rows for models nobody has
    judged yet. Rows: real (treatment), real (control), then models alphabetically. ``votes`` may also be a
    Tally. Closed-form: the same votes give the same table, with no resampling seed.
    """
    if isinstance(votes, pd.DataFrame) and "kind" in votes:
        votes = votes[votes["kind"] == SCORED]
    tally = as_tally(votes)
    table = st.rate_table(tally, ["source", "group"]).astype({"source": str, "group": str})
    present = set(zip(table["source"], table["group"]))
    missing = [m for m in models if (m, st.TREATMENT) not in present]
    if missing:
        table = pd.concat(
            [
                table.astype({"votes": int, "judged_real": int, "participants": int}),
                pd.DataFrame(
                    {
                        "source": missing,
                        "group": st.TREATMENT,
                        "votes": 0,
                        "judged_real": 0,
                        "participants": 0,
                        **dict.fromkeys(["rate", "ci_low", "ci_high", "wilson_low", "wilson_high"], math.nan),
                    }
                ),
            ],
            ignore_index=True,
        )
    hype = st.hype_by_model(tally).rename(columns={"model": "source"}).assign(group=st.TREATMENT)
    summary = table.merge(hype, on=["source", "group"], how="left")[SUMMARY_COLUMNS]
    labels = [st.row_label(source, group) for source, group in zip(summary["source"], summary["group"])]
    rank = {label: i for i, label in enumerate(st.row_order(labels))}
    order = sorted(range(len(labels)), key=lambda i: rank[labels[i]])
    return summary.iloc[order].reset_index(drop=True)


def study_summary(study, selection=Selection()):
    """summary_frame of a study, from the cached report (see report_tables)."""
    return report_tables(study, selection)["summary_frame"]


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


GROUPS = (st.TREATMENT, st.CONTROL)
# The stages a person passes through, in order: joined, gave at least one scored answer, finished.
STAGES = ("started", "voted", "finished")


def headline_counts(study, selection=Selection()):
    """Persons per stage and group, all counted over the same participants (the selection's):
    {"started": {"treatment": n, "control": n, "total": n}, "voted": {...}, "finished": {...},
    "bots_left_out": n}. "voted" is at least one answered scored trial, the same people the report's
    per-participant tables count. One grouped query, and one more for the bots left out."""
    scored = Trial.objects.filter(participant=OuterRef("pk"), kind=SCORED).exclude(answer="")
    rows = (
        selection.participants(study)
        .order_by()
        .values("group")
        .annotate(started=Count("pk"), voted=Count("pk", filter=Exists(scored)), finished=Count("finished_at"))
    )
    counts = {stage: dict.fromkeys((*GROUPS, "total"), 0) for stage in STAGES}
    for row in rows:
        for stage in STAGES:
            counts[stage][row["group"]] = row[stage]
            counts[stage]["total"] += row[stage]
    counts["bots_left_out"] = 0 if selection.include_bots else study.participants.exclude(kind=PERSON).count()
    return counts


def participation(study, selection=Selection(), headline=None):
    """Counts for the study list and dashboard: stimuli, participants started, finished, started per group,
    votes, and the rehearsal bots that the selection leaves out. Read off headline_counts (passed in when the
    caller has them already), so that every page counts people the same way."""
    headline = headline or headline_counts(study, selection)
    participants = selection.participants(study)
    return {
        "stimuli": study.stimuli.count(),
        "started": headline["started"]["total"],
        "finished": headline["finished"]["total"],
        "treatment": headline["started"][st.TREATMENT],
        "control": headline["started"][st.CONTROL],
        "votes": Trial.objects.filter(participant__in=participants, kind=SCORED).exclude(answer="").count(),
        "bots_left_out": headline["bots_left_out"],
    }


def attention_summary(study, selection=Selection()):
    """Attention checks: participants who answered at least one, how many failed (called one real), and how
    many of the selection's participants were left out for failing; None when the study has none."""
    if not study.catch_trials:
        return None
    everyone = Selection(include_bots=selection.include_bots).participants(study)
    checked = Trial.objects.filter(participant__in=everyone, kind=CATCH).exclude(answer="").values("participant")
    failed = everyone.filter(pk__in=failed_check_ids(study)).count()
    voted = Trial.objects.filter(participant__in=everyone, kind=SCORED).exclude(answer="").values("participant")
    return {
        "checked": checked.distinct().count(),
        "failed": failed,
        "excluded": failed if selection.exclude_failed_checks else 0,
        "exclude_failed_checks": selection.exclude_failed_checks,
        # Kept by the exclusion although no check ever tested them.
        "unchecked": everyone.filter(pk__in=voted).exclude(pk__in=checked).count(),
    }


# Manifest keys shown under their own labels, in this order; "import" (import_study's record) after them.
PROVENANCE_LABELS = {
    "split": "Split",
    "seed": "Seed (drawing scenes)",
    "n_scenes": "Scenes drawn",
    "heldout_images": "Held-out images drawn from",
    "crop_size": "Crop size (px)",
    "scenes": "Scenes",
    "scene_files": "Scene files",
    # import_study --allow-missing: {model: [scene, ...]} that model had no image of (shown as real only).
    "missing_scenes": "Scenes without a model's image",
}
IMPORT_LABELS = {
    "real_dir": "Real photos from",
    "generated": "Generated images from",
    "size": "Stimulus size (px)",
    "scenes": "Scenes imported",
    "practice_scenes": "Practice scenes",
    "catch_scenes": "Attention-check scenes",
}
# Values that are paths on the machine that built the study (often a temporary directory): only their last
# component means anything to a reader, and the rest can name a user's home or a deleted temporary folder.
PATH_KEYS = {"split", "checkpoint", "real_dir", "generated", "scene_files"}
# An absolute path inside free text: /a/b/c, ~/a/b or C:\a\b, of which only the last component is kept.
EMBEDDED_PATH = re.compile(r"(?<![\w.:/~-])~?/(?:[^\s/]+/)+([^\s/]+)|\b[A-Za-z]:\\(?:[^\s\\]+\\)+([^\s\\]+)")


def file_name(path):
    """The last component of a stored path, Windows or POSIX, with or without a trailing separator."""
    path = str(path)
    return (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).name or path


def shorten(text, limit=MANIFEST_TEXT_LIMIT):
    text = EMBEDDED_PATH.sub(lambda match: match.group(1) or match.group(2), text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def readable(value, *, path=False):
    """One manifest value as short text: lists as their first MANIFEST_LIST_PREVIEW items and a count,
    mappings as "key: value; ...", paths (path=True) as file names."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return shorten("; ".join(f"{key}: {readable(item, path=path)}" for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        shown = ", ".join(readable(item, path=path) for item in value[:MANIFEST_LIST_PREVIEW])
        if len(value) > MANIFEST_LIST_PREVIEW:
            shown = f"{shown}, … ({len(value)} in all)"
        return shorten(shown, limit=MANIFEST_TEXT_LIMIT * 2)
    return shorten(file_name(value) if path else str(value))


def _row(label, value, *, path=False):
    """A table row: a mapping becomes one sub-row per key ({model: [scene, ...]} reads as a list per model)."""
    if isinstance(value, dict) and value:
        return {
            "label": label,
            "value": None,
            "items": [(str(key), readable(item, path=path)) for key, item in value.items()],
        }
    return {"label": label, "value": readable(value, path=path), "items": None}


def _run_row(name, run):
    """A row of the runs table from build_study's record of a run (a checkpoint's model, step and config)."""
    if not isinstance(run, dict):
        return {
            "name": name,
            "model": "—",
            "checkpoint": readable(run, path=True),
            "step": "—",
            "seed": "—",
            "options": "",
            "saturation": "—",
        }
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    options = run.get("model_kwargs")
    return {
        "name": name,
        "model": readable(run.get("model_name")),
        # Another tool's outputs (build_study --outputs) have a folder where a run has its checkpoint.
        "checkpoint": readable(run.get("checkpoint", run.get("outputs")), path=True),
        "step": readable(run.get("step", run.get("steps"))),
        "seed": readable(run.get("seed", config.get("seed"))),
        # The network's settings (the paper's ablations), which tell two runs of one model apart.
        "options": readable(options) if options else "",
        # A boost after the model (the paper's study used 1.4) changes what participants judged.
        "saturation": readable(run["saturation"]) if run.get("saturation") else "as predicted",
    }


def provenance(manifest):
    """How the stimuli were chosen, from Study.manifest, as {"description": text or None, "runs": [row, ...],
    "rows": [{"label", "value", "items"}, ...]} for the report's table: the runs with checkpoint file names,
    then the split, seed and scenes, then the import record, then any other key as it is named. No value keeps
    a directory, and long ones are cut."""
    if not isinstance(manifest, dict):
        # A JSONField holds whatever was stored; a manifest that is not a mapping is still shown.
        manifest = {} if manifest is None else {"manifest": manifest}
    manifest = dict(manifest)
    description = manifest.pop("description", None)
    # Shown as its own warning at the top of the report.
    manifest.pop("luminance_mismatch", None)
    runs = manifest.pop("runs", None)
    if isinstance(runs, dict):
        run_rows = [_run_row(str(name), run) for name, run in runs.items()]
    else:
        run_rows = []
        if runs is not None:
            manifest["runs"] = runs
    rows = [
        _row(label, manifest.pop(key), path=key in PATH_KEYS)
        for key, label in PROVENANCE_LABELS.items()
        if key in manifest
    ]
    imported = manifest.pop("import", None)
    if isinstance(imported, dict):
        rows += [
            _row(label, imported[key], path=key in PATH_KEYS) for key, label in IMPORT_LABELS.items() if key in imported
        ]
        rows += [
            _row(f"import: {key}", value, path=key in PATH_KEYS)
            for key, value in sorted(imported.items())
            if key not in IMPORT_LABELS
        ]
    elif imported is not None:
        manifest["import"] = imported
    rows += [_row(str(key), value, path=key in PATH_KEYS) for key, value in sorted(manifest.items())]
    return {
        "description": shorten(str(description), limit=MANIFEST_TEXT_LIMIT * 4) if description else None,
        "runs": run_rows,
        "rows": rows,
    }


def _missing_as_none(values):
    """A dict with NaN turned into None, as records() does for rows; None stays None."""
    if values is None:
        return None
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in values.items()}


def records(frame):
    """Rows as dicts for templates, NaN turned into None (templates can test for None, not for NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def votes_version(study):
    """What the report's cache is keyed on: participants (count, newest), the answers they gave, how many
    finished (set just after a last answer's transaction) and how many ran out of the study's time limit (which
    happens with no request at all). Any new answer, join, finish, deletion or time-out changes it; one indexed
    aggregate over the study's participants."""
    counts = study.participants.aggregate(
        people=Count("pk"),
        newest=Max("pk"),
        answers=Sum("answer_count"),
        finished=Count("finished_at"),
        timed_out=Count("pk", filter=timed_out(study)),
    )
    return counts["people"], counts["newest"], counts["answers"], counts["finished"], counts["timed_out"]


def _cached(name, study, selection, compute, *version):
    """compute(study, selection), cached per study, selection, votes_version and ``version`` (what else the
    tables are computed from) under ``name``."""
    switches = (
        f"{selection.include_bots:d}{selection.exclude_failed_checks:d}-{'.'.join(selection.kinds)}-{selection.cohort}"
    )
    versions = "-".join(map(str, (*votes_version(study), *version)))
    key = f"turing.{name}.{study.pk}.{switches}.{versions}"
    tables = cache.get(key)
    if tables is None:
        tables = compute(study, selection)
        cache.set(key, tables, REPORT_CACHE_SECONDS)
    return tables


def report_tables(study, selection=Selection()):
    """Everything the staff report shows except the study itself and its metrics section (metric_tables),
    cached per study, selection and votes_version, so that an unchanged report costs a cache read.
    Lists of images and of participants are cut at REPORT_ROWS (counts of all are kept); the exports have
    every row."""
    return _cached("report", study, selection, _report_tables)


def live_tables(study, selection=Selection()):
    """What the live dashboard shows (headline, participation, summary), cached apart from report_tables: the
    dashboard polls after every vote and needs none of the report's other sections (per-image tables, the
    long votes table for exposures and protocols, cohorts, comparisons)."""
    return _cached("live", study, selection, _live_tables)


def _live_tables(study, selection):
    headline = headline_counts(study, selection)
    summary = summary_frame(study_tally(study, selection), study.model_names)
    return {
        "headline": headline,
        "participation": participation(study, selection, headline),
        "summary": records(summary),
    }


def metric_tables(study, selection=Selection()):
    """The report's section on whether the colorization metrics predict what fools people
    (turing.analysis.metric_correlation): every generated image's fooling rate and metrics, and Spearman's ρ per model
    and metric with its bootstrap interval. Cached like report_tables but apart from it, so that the gallery
    and study_report, which read report_tables, do not pay for the bootstrap."""
    # Stored metrics change without a vote when manage.py stimulus_metrics fills in an older study's.
    measured = study.stimuli.filter(metrics__isnull=False).count()
    return _cached("metrics", study, selection, _metric_tables, measured)


def _metric_tables(study, selection):
    images = metric_correlation.image_table(
        report_tables(study, selection)["per_image_frame"], stored_metrics_frame(study)
    )
    correlations = metric_correlation.metric_correlations(images, seed=study.seed)
    voted = images[images["votes"] > 0]
    return {
        "metric_images_frame": images,
        "metric_correlations_frame": correlations,
        "metric_correlations": records(correlations),
        "metric_images": records(voted.groupby("model", sort=False).head(REPORT_ROWS)),
        "metric_images_total": len(voted),
        "metric_images_cut": bool((voted["model"].value_counts() > REPORT_ROWS).any()),
        # Generated images judged but not measured: imported before metrics were stored at import.
        "metric_images_unmeasured": int(voted[list(metric_correlation.METRICS)].isna().any(axis=1).sum()),
        "metric_min_images": metric_correlation.MIN_IMAGES,
    }


def _report_tables(study, selection):
    tally = study_tally(study, selection)
    summary = summary_frame(tally, study.model_names)
    images = st.per_image_table(tally)
    fooling, reals = images[images["source"] != REAL], images[images["source"] == REAL]
    doubted = reals.sort_values(["rate", "votes"], ascending=[True, False])
    accuracy = st.participant_accuracy(tally)
    histogram = st.accuracy_histogram(accuracy["accuracy"])
    headline = headline_counts(study, selection)
    protocol = protocol_of(study)
    timed = Trial.objects.filter(participant__study=study, exposure_ms__isnull=False).exists()
    # The long table costs a second read of every vote: only for what needs it.
    votes = votes_frame(study, selection) if timed or protocol.report_template else None
    return {
        "protocol_tables": protocol.report_tables(votes[votes["kind"] == SCORED]) if votes is not None else {},
        "exposure_flags": exposure_flags(votes) if timed else None,
        "headline": headline,
        "participation": participation(study, selection, headline),
        "attention": attention_summary(study, selection),
        "total_votes": tally.votes,
        "voters": len(accuracy),
        "summary_frame": summary,
        "summary": records(summary),
        "model_rows": records(summary[summary["hype_infinity"].notna()]),
        "comparisons": records(st.model_comparisons(tally)),
        # Measured (15 participants x 12 scenes): model-pair p-values 7% below 0.05 where 5% should be.
        "few_people_and_scenes": len(accuracy) < FEW and tally.by_stimulus["scene_code"].nunique() < FEW,
        "treatment_vs_control": _missing_as_none(st.treatment_vs_control(tally)),
        "signal_detection": records(st.signal_detection_by_group(tally)),
        "signal_detection_by_model": records(st.signal_detection_by_model(tally)),
        # Every image's row, for the metrics section (metric_tables).
        "per_image_frame": images,
        # Every image's counts, for the gallery, which shows them all.
        "image_counts": {
            token: (int(votes), int(judged))
            for token, votes, judged in zip(images["stimulus"], images["votes"], images["judged_real"])
        },
        "fooling_images": records(fooling.head(REPORT_ROWS)),
        "fooling_images_total": len(fooling),
        "doubted_real_images": records(doubted.head(REPORT_ROWS)),
        "doubted_real_images_total": len(reals),
        # Both ends when there are too many to list: the least accurate are whom one checks for inattention.
        "participant_accuracy": records(
            accuracy
            if len(accuracy) <= REPORT_ROWS
            else pd.concat([accuracy.head(REPORT_ROWS // 2), accuracy.tail(REPORT_ROWS // 2)])
        ),
        "participant_accuracy_total": len(accuracy),
        "accuracy_histogram": records(histogram),
        "accuracy_histogram_max": int(histogram["participants"].max()),
        "mean_accuracy": float(accuracy["accuracy"].mean()) if len(accuracy) else None,
        "expertise": records(st.expertise_breakdown(tally)),
        "cohorts": records(cohort_breakdown(study, selection, summary)),
        **timed_out_rows(study, selection),
    }


COHORT_COLUMNS = ["cohort", "row", "votes", "participants", "rate", "ci_low", "ci_high"]


def cohort_breakdown(study, selection, summary):
    """Judged-real rates per cohort (how participants came: poster, kiosk, Prolific, MTurk, link): the
    summary_frame of each cohort's participants alone, so each rate has the report's crossed interval. With a
    single cohort that is ``summary`` itself (the selection's summary), which is not computed again."""
    present = set(selection.participants(study).order_by().values_list("cohort", flat=True).distinct())
    cohorts = [cohort for cohort in Participant.Cohort.values if cohort in present]
    if len(cohorts) == 1:
        summaries = [(cohorts[0], summary)]
    else:
        summaries = [
            (cohort, summary_frame(study_tally(study, replace(selection, cohort=cohort)))) for cohort in cohorts
        ]
    names = dict(Participant.Cohort.choices)
    voted = [(cohort, table[table["votes"] > 0]) for cohort, table in summaries]
    tables = [
        table.assign(
            cohort=names[cohort],
            row=[st.row_label(source, group) for source, group in zip(table["source"], table["group"])],
        )
        for cohort, table in voted
    ]
    if not tables:
        return pd.DataFrame(columns=COHORT_COLUMNS)
    return pd.concat(tables, ignore_index=True)[COHORT_COLUMNS]


def timed_out_rows(study, selection):
    """{"timed_out": rows, "timed_out_total": n}: the participants (people, and bots if the selection counts
    them) left out of every statistic for not finishing within the study's time limit, oldest first, with their
    scored answers; rows cut at REPORT_ROWS."""
    people = study.participants.filter(timed_out(study))
    if not selection.include_bots:
        people = people.filter(kind=PERSON)
    answered = Count("trials", filter=Q(trials__kind=SCORED) & ~Q(trials__answer=""))
    rows = people.order_by("started_at").annotate(answered=answered)
    names = dict(Participant.Cohort.choices)
    listed = rows.values("pk", "label", "cohort", "started_at", "finished_at", "answered")[:REPORT_ROWS]
    return {
        "timed_out": [{**row, "cohort": names[row["cohort"]]} for row in listed],
        "timed_out_total": people.count(),
    }


def build_report(study, selection=Selection()):
    """Everything the staff report shows, as plain values and lists of row dicts."""
    return {
        "study": study,
        "selection": selection,
        "protocol": protocol_of(study),
        **report_tables(study, selection),
        **metric_tables(study, selection),
        "luminance_mismatch": (study.manifest or {}).get("luminance_mismatch", []),
        "provenance": provenance(study.manifest),
        "report_rows": REPORT_ROWS,
    }
