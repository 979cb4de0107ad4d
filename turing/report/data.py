"""A study's votes as pandas tables: which participants and trials count (Selection), the SQL fetch of their
votes (votes_frame, the long table; study_tally, three integers per vote), and the counts and tables the
report is assembled from."""

import math
from dataclasses import dataclass, replace
from itertools import chain

import numpy as np
import pandas as pd
from django.db import connection
from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, When

from turing.analysis import power
from turing.analysis import statistics as st
from turing.analysis.tally import Tally, as_tally
from turing.models import Participant, Pool, Trial
from turing.participant.crowd import timed_out
from turing.participant.enrollment import pool_scenes
from turing.vocabulary import (
    BUTTON_ORDERS,
    CATCH,
    CONTROL,
    EXPERTISE_WORD,
    GROUPS,
    PERSON,
    REAL,
    SCORED,
    TREATMENT,
)

# The votes export's long format, one row per answered trial. `participant` is the participant's stable id
# (their primary key); `label` is the participant_label / PROLIFIC_PID they joined with ("" if none), kept
# apart so that statistics never merge people who share a label. `cohort` is how they came (poster, kiosk,
# prolific, mturk, link; turing.participant.crowd). `participant_kind` is person or bot; `kind`
# is scored, practice or catch (the default export holds scored trials only); `position` is the order of
# presentation, practice first. `stimulus` is the image's opaque token, which names no file, model or scene.
# `protocol` is the study's (turing.protocols); `exposure_ms` the exposure it asked (empty: no limit) and
# `achieved_exposure_ms` the one the browser measured. Under 2afc, `stimulus` is the pair's generated image,
# `generated_side` (left/right) where it was, and `answer` what it was judged: "real" when it was picked.
# `button_order` (real-first, generated-first) is the order of the participant's answer buttons, first (left, or
# top) to second; empty under 2afc, whose buttons are the sides. `image_css_px` is how large the image was on
# screen when the answer was given, "<width>x<height>" in CSS pixels (under 2afc each image's: both are the same
# size), and `device_pixel_ratio` the screen's physical pixels per CSS pixel then, as the browser measured them;
# both empty where it could not (without JavaScript, or a page reloaded after the exposure ran out).
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
    "button_order",
    "image_css_px",
    "device_pixel_ratio",
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
    *st.PERSON_COLUMNS,
]
# The summary's two rates of each row: per vote (judged_real / votes, each vote counts once) and per person (the
# mean over participants of each one's own rate, each person counts once; turing.analysis.statistics). The
# report shows PRIMARY_RATE first, and a preregistration names its own (turing.preregistration).
PER_PERSON, PER_VOTE = "per person", "per vote"
PRIMARY_RATE = PER_PERSON
# Below this many participants and this many scenes at once, the report warns that p-values are optimistic.
FEW = 20
# An achieved exposure further than this from the one asked is flagged: more than one frame at 60 Hz.
EXPOSURE_TOLERANCE_MS = 17
# Rows the report lists of images and of participants; the exports have them all.
REPORT_ROWS = 50


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


def scored_trials(study, selection):
    """The answered trials of the kinds ``selection`` keeps, of the participants it keeps."""
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
    low = table_ids.min()
    span = int(table_ids.max() - low) + 1
    if span > 4 * len(ids) + 1_000_000:
        order = np.argsort(table_ids)
        found = order[np.searchsorted(table_ids, ids, sorter=order).clip(max=len(order) - 1)]
        return found, table_ids[found] == ids
    # While the ids' range is small, a table of positions by id: one look-up per vote where the binary search
    # cost a tenth of the votes' fetch. Its last slot (-1) answers the ids outside the range.
    position = np.full(span + 1, -1)
    position[table_ids - low] = np.arange(len(table_ids))
    # An empty fetch's ids come as objects, which cannot index.
    offset = np.asarray(ids, dtype=np.int64) - low
    found = position[np.where((offset >= 0) & (offset < span), offset, span)]
    return found.clip(min=0), found >= 0


def _people_and_images(study, selection):
    people = pd.DataFrame.from_records(
        _fetch(
            selection.participants(study).values_list(
                "pk", "label", "cohort", "kind", "group", "expertise", "button_order"
            )
        ),
        columns=["participant", "label", "cohort", "participant_kind", "group", "expertise", "button_order"],
    )
    images = pd.DataFrame.from_records(
        _fetch(study.stimuli.values_list("pk", "token", "scene", "source")),
        columns=["id", "stimulus", "scene", "source"],
    )
    return people, images


def votes_frame(study, selection=Selection()):
    """Every answered trial of ``study`` that ``selection`` keeps, in the long format of VOTE_COLUMNS."""
    rows = _fetch(
        scored_trials(study, selection)
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
            "expertise": person["expertise"].map(EXPERTISE_WORD.get).to_numpy(),
            "exposure_ms": trials["exposure_ms"].astype("Int64"),
            "achieved_exposure_ms": trials["achieved_exposure_ms"].astype("Int64"),
            "generated_side": trials["generated_side"],
            "button_order": person["button_order"].to_numpy(),
            "image_css_px": _css_size(trials["image_css_width"], trials["image_css_height"]),
            "device_pixel_ratio": trials["device_pixel_ratio"].astype("Float64"),
        },
        index=trials.index,
    )
    return frame[VOTE_COLUMNS]


def _css_size(widths, heights):
    """The votes export's image_css_px: "<width>x<height>", None where the browser measured none."""
    measured = widths.notna() & heights.notna()
    sizes = widths.astype("Int64").astype(str) + "x" + heights.astype("Int64").astype(str)
    return sizes.where(measured, None)


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
    "image_css_width",
    "image_css_height",
    "device_pixel_ratio",
)


def pilot_estimate(study, seed=0):
    """power.PilotEstimate of a pilot study: its people's scored votes, and its whole pool of scored scenes
    (a short pilot's votes may not reach them all)."""
    return power.estimate_sds(votes_frame(study), seed=seed, scenes=pool_scenes(study)[Pool.SCORED])


def study_tally(study, selection=Selection()):
    """The Tally of the scored votes ``selection`` keeps, fetched as three integers per vote."""
    selection = replace(selection, kinds=(SCORED,))
    trials = scored_trials(study, selection).annotate(
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
    sampled; see turing.analysis.crossed) and the votes-independent Wilson interval wilson_low/wilson_high, for
    models HYPE-infinity with its crossed interval, and the per-person rate person_rate (each participant's own
    rate, averaged) with its crossed interval person_ci_low/person_ci_high. ``models`` adds zero-vote rows for
    models nobody has judged yet. Rows: real (treatment), real (control), then models alphabetically. ``votes``
    may also be a Tally. Closed-form: the same votes give the same table, with no resampling seed.
    """
    if isinstance(votes, pd.DataFrame) and "kind" in votes:
        votes = votes[votes["kind"] == SCORED]
    tally = as_tally(votes)
    table = st.rate_table(tally, ["source", "group"], per_person=True).astype({"source": str, "group": str})
    present = set(zip(table["source"], table["group"]))
    missing = [m for m in models if (m, TREATMENT) not in present]
    if missing:
        table = pd.concat(
            [
                table.astype({"votes": int, "judged_real": int, "participants": int}),
                pd.DataFrame(
                    {
                        "source": missing,
                        "group": TREATMENT,
                        "votes": 0,
                        "judged_real": 0,
                        "participants": 0,
                        **dict.fromkeys(
                            ["rate", "ci_low", "ci_high", "wilson_low", "wilson_high", *st.PERSON_COLUMNS], math.nan
                        ),
                    }
                ),
            ],
            ignore_index=True,
        )
    hype = st.hype_by_model(tally).rename(columns={"model": "source"}).assign(group=TREATMENT)
    summary = table.merge(hype, on=["source", "group"], how="left")[SUMMARY_COLUMNS]
    labels = [st.row_label(source, group) for source, group in zip(summary["source"], summary["group"])]
    rank = {label: i for i, label in enumerate(st.row_order(labels))}
    order = sorted(range(len(labels)), key=lambda i: rank[labels[i]])
    return summary.iloc[order].reset_index(drop=True)


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


def participation(study, selection=Selection(), headline=None, votes=None):
    """Counts for the study list and dashboard: stimuli, participants started, finished, started per group,
    votes, and the rehearsal bots that the selection leaves out. Read off headline_counts (passed in when the
    caller has them already), so that every page counts people the same way; ``votes`` is the scored answers'
    count where the caller has it (a Tally's votes), else counted here."""
    headline = headline or headline_counts(study, selection)
    if votes is None:
        votes = scored_trials(study, replace(selection, kinds=(SCORED,))).count()
    return {
        "stimuli": study.stimuli.count(),
        "started": headline["started"]["total"],
        "finished": headline["finished"]["total"],
        "treatment": headline["started"][TREATMENT],
        "control": headline["started"][CONTROL],
        "votes": votes,
        "bots_left_out": headline["bots_left_out"],
    }


def finished_ids(study, selection=Selection()):
    """The ids of the selection's participants who finished, for statistics.dropout_rates."""
    return list(selection.participants(study).filter(finished_at__isnull=False).values_list("pk", flat=True))


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


def missing_as_none(values):
    """A dict with NaN turned into None, as records() does for rows; None stays None."""
    if values is None:
        return None
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in values.items()}


def records(frame):
    """Rows as dicts for templates, NaN turned into None (templates can test for None, not for NaN). Row by row
    rather than with DataFrame.where, which costs milliseconds per frame however short."""
    return [
        {
            key: None if value is None or (not isinstance(value, str) and pd.isna(value)) else value
            for key, value in row.items()
        }
        for row in frame.to_dict("records")
    ]


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


BUTTON_ORDER_COLUMNS = ["row", "buttons", "participants", "votes", "judged_real", "rate"]


def button_order_rates(study, selection=Selection()):
    """The position check: scored votes, the participants who gave them and the share judged real per row (real,
    real (control), each model) and button order (Participant.ButtonOrder's label), rows in the summary's order.
    One grouped query, counted by the database."""
    rows = (
        scored_trials(study, replace(selection, kinds=(SCORED,)))
        .order_by()
        .values("stimulus__source", "participant__group", "participant__button_order")
        .annotate(
            participants=Count("participant", distinct=True),
            votes=Count("pk"),
            judged_real=Count("pk", filter=Q(answer=REAL)),
        )
        .values_list(
            "stimulus__source",
            "participant__group",
            "participant__button_order",
            "participants",
            "votes",
            "judged_real",
        )
    )
    counted = [(st.row_label(source, group), order, *counts) for source, group, order, *counts in rows]
    row_rank = {label: i for i, label in enumerate(st.row_order({row[0] for row in counted}))}
    counted.sort(key=lambda row: (row_rank[row[0]], list(BUTTON_ORDERS).index(row[1])))
    names = dict(Participant.ButtonOrder.choices)
    table = pd.DataFrame.from_records(
        [(label, names[order], *counts) for label, order, *counts in counted], columns=BUTTON_ORDER_COLUMNS[:-1]
    )
    table["rate"] = table["judged_real"] / table["votes"]
    return table


def timed_out_rows(study, selection):
    """{"timed_out": rows, "timed_out_total": n}: the participants (people, and bots if the selection counts
    them) left out of every statistic for not finishing within the study's time limit, oldest first, with their
    scored answers; rows cut at REPORT_ROWS."""
    people = study.participants.filter(timed_out(study))
    if not selection.include_bots:
        people = people.filter(kind=PERSON)
    answered = Count("trials", filter=Q(trials__kind=SCORED) & ~Q(trials__answer=""))
    # pk breaks ties (people who started in the same instant), so the list reads the same on every database.
    rows = people.order_by("started_at", "pk").annotate(answered=answered)
    names = dict(Participant.Cohort.choices)
    listed = rows.values("pk", "label", "cohort", "started_at", "finished_at", "answered")[:REPORT_ROWS]
    return {
        "timed_out": [{**row, "cohort": names[row["cohort"]]} for row in listed],
        "timed_out_total": people.count(),
    }
