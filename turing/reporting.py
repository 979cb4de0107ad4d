"""A study's votes as pandas tables, and the report built from them (staff pages and commands share it)."""

import json
import math

import pandas as pd

from turing import statistics as st
from turing.models import REAL, Trial

# The votes export's long format, one row per answered scored trial. `participant` is the participant's
# label (participant_label / PROLIFIC_PID) or else their random token; `stimulus` is the image's opaque
# token, the same one its URL uses, so it names no file, model or scene.
VOTE_COLUMNS = [
    "participant", "group", "position", "stimulus", "scene", "source", "answer", "correct", "response_ms",
    "answered_at", "expertise",
]
SUMMARY_COLUMNS = [
    "source", "group", "votes", "judged_real", "rate", "ci_low", "ci_high", "boot_low", "boot_high",
    "participants", "hype_infinity", "hype_low", "hype_high",
]
EXPERTISE_ANSWERS = {True: "yes", False: "no", None: None}
# How many scene names the "how stimuli were chosen" paragraph lists before it only counts them.
MANIFEST_LIST_PREVIEW = 10


def votes_frame(study):
    """Every answered scored trial of ``study`` in the long format of VOTE_COLUMNS."""
    rows = (
        Trial.objects.filter(participant__study=study, practice=False)
        .exclude(answer="")
        .order_by("participant__started_at", "participant_id", "position")
        .values_list(
            "participant__label", "participant__token", "participant__group", "position", "stimulus__token",
            "stimulus__scene", "stimulus__source", "answer", "response_ms", "answered_at", "participant__expertise",
        )
    )
    flat = [
        (label or token, group, position, stimulus, scene, source, answer, (answer == REAL) == (source == REAL),
         response_ms, answered_at, EXPERTISE_ANSWERS[expertise])
        for label, token, group, position, stimulus, scene, source, answer, response_ms, answered_at, expertise
        in rows
    ]
    frame = pd.DataFrame.from_records(flat, columns=VOTE_COLUMNS)
    return frame.astype({"position": "int64", "correct": bool, "response_ms": "Int64"}).assign(
        answered_at=pd.to_datetime(frame["answered_at"], utc=True)
    )


def summary_frame(votes, models=(), *, n_resamples=st.N_RESAMPLES, seed=0):
    """One row per source and group: `real`, `real (control)`, each model (treatment group).

    rate = judged_real / votes, Wilson ci_low/ci_high, participant-bootstrap boot_low/boot_high, and for
    models HYPE-infinity with its participant-bootstrap interval. ``models`` adds zero-vote rows for
    models nobody has judged yet.
    """
    table = st.rate_table(votes, ["source", "group"])
    present = set(zip(table["source"], table["group"]))
    missing = [m for m in models if (m, st.TREATMENT) not in present]
    if missing:
        table = pd.concat([table, pd.DataFrame({
            "source": missing, "group": st.TREATMENT, "votes": 0, "judged_real": 0, "rate": math.nan,
            "ci_low": math.nan, "ci_high": math.nan, "participants": 0,
        })], ignore_index=True)
    treated = votes[votes["group"] == st.TREATMENT]
    treated_reals = treated[treated["source"] == REAL]
    rows = []
    for row in table.to_dict("records"):
        in_row = votes[(votes["source"] == row["source"]) & (votes["group"] == row["group"])]
        boot_low, boot_high = st.bootstrap_participants(
            *st.per_participant_counts(in_row, in_row["answer"] == REAL), n_resamples=n_resamples, seed=seed)
        hype = hype_low = hype_high = math.nan
        if row["source"] != REAL and row["group"] == st.TREATMENT and row["votes"]:
            hype = st.hype_infinity(row["judged_real"], row["votes"],
                                    int((treated_reals["answer"] != REAL).sum()), len(treated_reals))
            judged = pd.concat([in_row, treated_reals])
            hype_low, hype_high = st.bootstrap_participants(
                *st.per_participant_counts(judged, ~judged["correct"]), n_resamples=n_resamples, seed=seed)
        rows.append({**row, "source": st.row_label(row["source"], row["group"]), "boot_low": boot_low,
                     "boot_high": boot_high, "hype_infinity": hype, "hype_low": hype_low, "hype_high": hype_high})
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    rank = {label: i for i, label in enumerate(st.row_order(summary["source"]))}
    return summary.sort_values("source", key=lambda labels: labels.map(rank), ignore_index=True)


def study_summary(study, votes=None):
    """summary_frame of a study (``votes``: its votes_frame, if already loaded).

    The bootstrap is seeded with the study's seed so that every page load shows the same intervals;
    numpy wants a non-negative seed and Study.seed may be any integer.
    """
    votes = votes_frame(study) if votes is None else votes
    return summary_frame(votes, study.model_names, seed=abs(study.seed))


def write_votes_csv(study, target):
    """Write the votes export (VOTE_COLUMNS) to a path or file object; returns the number of votes."""
    votes = votes_frame(study)
    votes.to_csv(target, index=False)
    return len(votes)


def write_summary_csv(study, target):
    """Write the summary export (SUMMARY_COLUMNS) to a path or file object; returns the summary."""
    summary = study_summary(study)
    summary.to_csv(target, index=False)
    return summary


def participation(study):
    """Counts for the study list and dashboard: stimuli, participants started, finished, per group, votes."""
    participants = study.participants.all()
    return {
        "stimuli": study.stimuli.count(),
        "started": participants.count(),
        "finished": participants.filter(finished_at__isnull=False).count(),
        "treatment": participants.filter(group=st.TREATMENT).count(),
        "control": participants.filter(group=st.CONTROL).count(),
        "votes": Trial.objects.filter(participant__study=study, practice=False).exclude(answer="").count(),
    }


def manifest_summary(manifest):
    """The study manifest as (description or None, [(key, readable value), ...]) for the report."""
    manifest = dict(manifest or {})
    description = manifest.pop("description", None)
    items = []
    for key, value in sorted(manifest.items()):
        if isinstance(value, list):
            shown = ", ".join(str(v) for v in value[:MANIFEST_LIST_PREVIEW])
            extra = len(value) - MANIFEST_LIST_PREVIEW
            value = f"{shown}, … ({len(value)} in all)" if extra > 0 else shown
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        items.append((key, str(value)))
    return description, items


def records(frame):
    """Rows as dicts for templates, NaN turned into None (templates can test for None, not for NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def build_report(study):
    """Everything the staff report shows, as plain values and lists of row dicts."""
    votes = votes_frame(study)
    summary = study_summary(study, votes)
    images = st.per_image_table(votes)
    accuracy = st.participant_accuracy(votes)
    histogram = st.accuracy_histogram(accuracy["accuracy"])
    description, manifest_items = manifest_summary(study.manifest)
    return {
        "study": study,
        "participation": participation(study),
        "total_votes": len(votes),
        "voters": int(votes["participant"].nunique()),
        "votes": votes,
        "summary_frame": summary,
        "summary": records(summary),
        "model_rows": records(summary[summary["hype_infinity"].notna()]),
        "comparisons": records(st.model_comparisons(votes)),
        "treatment_vs_control": st.treatment_vs_control(votes),
        "signal_detection": records(st.signal_detection_by_group(votes)),
        "fooling_images": records(images[images["source"] != REAL]),
        "doubted_real_images": records(
            images[images["source"] == REAL].sort_values(["rate", "votes"], ascending=[True, False])),
        "participant_accuracy": records(accuracy),
        "accuracy_histogram": records(histogram),
        "accuracy_histogram_max": int(histogram["participants"].max()),
        "mean_accuracy": float(accuracy["accuracy"].mean()) if len(accuracy) else None,
        "expertise": records(st.expertise_breakdown(votes)),
        "manifest_description": description,
        "manifest_items": manifest_items,
    }
