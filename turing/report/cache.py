"""The report's tables, cached per study, selection and data_version: an unchanged report costs a cache read."""

import hashlib

import pandas as pd
from django.core.cache import cache

from turing.analysis import metric_correlation
from turing.analysis import statistics as st
from turing.models import Study, Trial
from turing.participant.crowd import timed_out
from turing.protocols import protocol_of
from turing.report.data import (
    FEW,
    REPORT_ROWS,
    Selection,
    attention_summary,
    button_order_rates,
    cohort_breakdown,
    exposure_flags,
    finished_ids,
    headline_counts,
    missing_as_none,
    participation,
    records,
    study_tally,
    summary_frame,
    timed_out_rows,
    votes_frame,
)
from turing.stimuli.metrics import stored_metrics_frame
from turing.vocabulary import REAL, SCORED

# A bound on how long a hand edit the cache key cannot see (say, in the database shell) stays unseen.
REPORT_CACHE_SECONDS = 600


def data_version(study):
    """What the report's cache is keyed on: the study's data_version, which every join, vote (a last answer's
    finish with it), bot purge and deletion moves inside its own transaction (turing.models.StudyQuerySet
    .data_changed), read from the database, not from ``study``, which may have been loaded before the last vote;
    and, for a study with a time limit, how many participants ran out of it, which changes with no request at
    all. A tuple of numbers, joined into the cache keys."""
    version = Study.objects.filter(pk=study.pk).values_list("data_version", flat=True).get()
    if not study.time_limit_minutes:
        return (version,)
    return version, study.participants.filter(timed_out(study)).count()


def _key(name, study, selection, version):
    # Every field of the selection, whatever fields it gains; hashed, as a key may not hold spaces or quotes.
    switches = hashlib.md5(repr(selection).encode(), usedforsecurity=False).hexdigest()
    return f"turing.{name}.{study.pk}.{switches}.{'-'.join(map(str, version))}"


def cached(name, study, selection, compute):
    """compute(study, selection, version), cached per study, selection and data_version (``version``) under
    ``name``."""
    version = data_version(study)
    key = _key(name, study, selection, version)
    tables = cache.get(key)
    if tables is None:
        tables = compute(study, selection, version)
        cache.set(key, tables, REPORT_CACHE_SECONDS)
    return tables


def report_tables(study, selection=Selection()):
    """Everything the staff report shows except the study itself and its metrics section (metric_tables),
    cached per study, selection and data_version, so that an unchanged report costs a cache read.
    Lists of images and of participants are cut at REPORT_ROWS (counts of all are kept); the exports have
    every row."""
    return cached("report", study, selection, _report_tables)


def live_tables(study, selection=Selection()):
    """What the live dashboard shows (headline, participation, summary), cached apart from report_tables: the
    dashboard polls after every vote and needs none of the report's other sections (per-image tables, the
    long votes table for exposures and protocols, cohorts, comparisons)."""
    return cached("live", study, selection, _live_tables)


def _live_tables(study, selection, version, tally=None):
    headline = headline_counts(study, selection)
    if tally is None:
        tally = study_tally(study, selection)
    summary = summary_frame(tally, study.model_names)
    return {
        "headline": headline,
        "participation": participation(study, selection, headline, tally.votes),
        "summary_frame": summary,
        "summary": records(summary),
    }


def metric_tables(study, selection=Selection()):
    """The report's section on whether the colorization metrics predict what fools people
    (turing.analysis.metric_correlation): every generated image's fooling rate and metrics, and Spearman's ρ per model
    and metric with its bootstrap interval. Cached like report_tables but apart from it, so that the gallery
    and study_report, which read report_tables, do not pay for the bootstrap."""
    return cached("metrics", study, selection, _metric_tables)


def _metric_tables(study, selection, version):
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
        "metric_min_images": metric_correlation.MIN_IMAGES,
    }


def _report_tables(study, selection, version):
    tally = study_tally(study, selection)
    live = _live_tables(study, selection, version, tally)
    # Stored as the live tables of the same version too: the report's chart and the dashboard then draw from
    # them without reading the votes again.
    cache.set(_key("live", study, selection, version), live, REPORT_CACHE_SECONDS)
    summary = live["summary_frame"]
    images = st.per_image_table(tally)
    fooling, reals = images[images["source"] != REAL], images[images["source"] == REAL]
    doubted = reals.sort_values(["rate", "votes"], ascending=[True, False])
    accuracy = st.participant_accuracy(tally)
    histogram = st.accuracy_histogram(accuracy["accuracy"])
    protocol = protocol_of(study)
    timed = Trial.objects.filter(participant__study=study, exposure_ms__isnull=False).exists()
    # The long table costs a second read of every vote: only for what needs it.
    votes = votes_frame(study, selection) if timed or protocol.reports_from_votes else None
    return {
        "protocol_sections": protocol.report_sections(votes[votes["kind"] == SCORED]) if votes is not None else [],
        "exposure_flags": exposure_flags(votes) if timed else None,
        **live,
        "attention": attention_summary(study, selection),
        "dropout": records(st.dropout_rates(tally, finished_ids(study, selection))),
        "total_votes": tally.votes,
        "voters": len(accuracy),
        "comparisons": records(st.model_comparisons(tally)),
        # Measured (15 participants x 12 scenes): model-pair p-values 7% below 0.05 where 5% should be.
        "few_people_and_scenes": len(accuracy) < FEW and tally.by_stimulus["scene_code"].nunique() < FEW,
        "treatment_vs_control": missing_as_none(st.treatment_vs_control(tally)),
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
        "button_orders": records(button_order_rates(study, selection)) if protocol.draws_button_order else None,
        **timed_out_rows(study, selection),
    }


def study_summary(study, selection=Selection()):
    """summary_frame of a study, from the cached live tables (which the report stores too)."""
    return live_tables(study, selection)["summary_frame"]
