"""A study's votes as pandas tables, and the report built from them (staff pages and commands share it)."""

import json
import math
from dataclasses import dataclass

import pandas as pd

from turing import statistics as st
from turing.models import REAL, Participant, Trial

# The votes export's long format, one row per answered trial. `participant` is the participant's stable id
# (their primary key); `label` is the participant_label / PROLIFIC_PID they joined with ("" if none), kept
# apart so that statistics never merge people who share a label. `participant_kind` is person or bot; `kind`
# is scored, practice or catch (the default export holds scored trials only); `position` is the order of
# presentation, practice first. `stimulus` is the image's opaque token, which names no file, model or scene.
VOTE_COLUMNS = [
    "participant", "label", "participant_kind", "group", "kind", "position", "stimulus", "scene", "source",
    "answer", "correct", "response_ms", "answered_at", "expertise",
]
SUMMARY_COLUMNS = [
    "source", "group", "votes", "judged_real", "rate", "ci_low", "ci_high", "boot_low", "boot_high",
    "participants", "hype_infinity", "hype_low", "hype_high",
]
EXPERTISE_ANSWERS = {True: "yes", False: "no", None: None}
# How many scene names the "how stimuli were chosen" paragraph lists before it only counts them.
MANIFEST_LIST_PREVIEW = 10
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
    people only (no rehearsal bots), scored trials only, everyone who took part."""

    include_bots: bool = False
    exclude_failed_checks: bool = False
    kinds: tuple = (SCORED,)

    def participants(self, study):
        participants = study.participants.all()
        if not self.include_bots:
            participants = participants.filter(kind=PERSON)
        if self.exclude_failed_checks:
            participants = participants.exclude(pk__in=failed_check_ids(study))
        return participants


def failed_check_ids(study):
    """Participants who called an attention check (an obviously wrong colorization) real at least once."""
    return Trial.objects.filter(participant__study=study, kind=CATCH, answer=REAL).values("participant")


def votes_frame(study, selection=Selection()):
    """Every answered trial of ``study`` that ``selection`` keeps, in the long format of VOTE_COLUMNS."""
    rows = (
        Trial.objects.filter(participant__in=selection.participants(study), kind__in=selection.kinds)
        .exclude(answer="")
        .order_by("participant__started_at", "participant_id", "position")
        .values_list(
            "participant_id", "participant__label", "participant__kind", "participant__group", "kind", "position",
            "stimulus__token", "stimulus__scene", "stimulus__source", "answer", "response_ms", "answered_at",
            "participant__expertise",
        )
    )
    columns = [column for column in VOTE_COLUMNS if column != "correct"]
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    frame.insert(columns.index("answer") + 1, "correct", (frame["answer"] == REAL) == (frame["source"] == REAL))
    return frame.astype({"participant": "int64", "position": "int64", "correct": bool, "response_ms": "Int64"}).assign(
        answered_at=pd.to_datetime(frame["answered_at"], utc=True),
        expertise=frame["expertise"].map(EXPERTISE_ANSWERS),
    )


def summary_frame(votes, models=(), *, n_resamples=st.N_RESAMPLES, seed=0):
    """One row per source (`real` or a model) and group (`treatment`, `control`), from scored trials only
    (a votes table with a `kind` column, such as `export_votes --all`, has its practice and catch rows dropped).

    rate = judged_real / votes, Wilson ci_low/ci_high, participant-bootstrap boot_low/boot_high, and for
    models HYPE-infinity with its participant-bootstrap interval. ``models`` adds zero-vote rows for
    models nobody has judged yet. Rows: real (treatment), real (control), then models alphabetically.
    """
    if "kind" in votes:
        votes = votes[votes["kind"] == SCORED]
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
            hype_low, hype_high = st.bootstrap_hype_infinity(
                *st.per_participant_hype_counts(in_row, treated_reals), n_resamples=n_resamples, seed=seed)
        rows.append({**row, "boot_low": boot_low, "boot_high": boot_high,
                     "hype_infinity": hype, "hype_low": hype_low, "hype_high": hype_high})
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    labels = [st.row_label(source, group) for source, group in zip(summary["source"], summary["group"])]
    rank = {label: i for i, label in enumerate(st.row_order(labels))}
    order = sorted(range(len(labels)), key=lambda i: rank[labels[i]])
    return summary.iloc[order].reset_index(drop=True)


def study_summary(study, votes=None, selection=Selection()):
    """summary_frame of a study (``votes``: its votes_frame for ``selection``, if already loaded).

    The bootstrap is seeded with the study's seed so that every page load shows the same intervals;
    numpy wants a non-negative seed and Study.seed may be any integer.
    """
    votes = votes_frame(study, selection) if votes is None else votes
    return summary_frame(votes, study.model_names, seed=abs(study.seed))


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


def write_summary_csv(study, target, selection=Selection()):
    """Write the summary export (SUMMARY_COLUMNS) to a path or file object; returns the summary."""
    summary = study_summary(study, selection=selection)
    neutralize_formulas(summary).to_csv(target, index=False)
    return summary


def participation(study, selection=Selection()):
    """Counts for the study list and dashboard: stimuli, participants started, finished, per group, votes,
    and the rehearsal bots that the selection leaves out."""
    participants = selection.participants(study)
    return {
        "stimuli": study.stimuli.count(),
        "started": participants.count(),
        "finished": participants.filter(finished_at__isnull=False).count(),
        "treatment": participants.filter(group=st.TREATMENT).count(),
        "control": participants.filter(group=st.CONTROL).count(),
        "votes": Trial.objects.filter(participant__in=participants, kind=SCORED).exclude(answer="").count(),
        "bots_left_out": 0 if selection.include_bots else study.participants.exclude(kind=PERSON).count(),
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


def manifest_summary(manifest):
    """The study manifest as (description or None, [(key, readable value), ...]) for the report."""
    manifest = dict(manifest or {})
    description = manifest.pop("description", None)
    # Shown as its own warning at the top of the report.
    manifest.pop("luminance_mismatch", None)
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


def build_report(study, selection=Selection()):
    """Everything the staff report shows, as plain values and lists of row dicts."""
    votes = votes_frame(study, selection)
    summary = study_summary(study, votes)
    images = st.per_image_table(votes)
    accuracy = st.participant_accuracy(votes)
    labels = votes.drop_duplicates("participant").set_index("participant")["label"]
    accuracy["label"] = accuracy["participant"].map(labels)
    histogram = st.accuracy_histogram(accuracy["accuracy"])
    description, manifest_items = manifest_summary(study.manifest)
    return {
        "study": study,
        "selection": selection,
        "participation": participation(study, selection),
        "attention": attention_summary(study, selection),
        "total_votes": len(votes),
        "voters": int(votes["participant"].nunique()),
        "votes": votes,
        "summary_frame": summary,
        "summary": records(summary),
        "model_rows": records(summary[summary["hype_infinity"].notna()]),
        "comparisons": records(st.model_comparisons(votes)),
        "treatment_vs_control": st.treatment_vs_control(votes),
        "signal_detection": records(st.signal_detection_by_group(votes)),
        "signal_detection_by_model": records(st.signal_detection_by_model(votes, seed=abs(study.seed))),
        "fooling_images": records(images[images["source"] != REAL]),
        "doubted_real_images": records(
            images[images["source"] == REAL].sort_values(["rate", "votes"], ascending=[True, False])),
        "participant_accuracy": records(accuracy),
        "accuracy_histogram": records(histogram),
        "accuracy_histogram_max": int(histogram["participants"].max()),
        "mean_accuracy": float(accuracy["accuracy"].mean()) if len(accuracy) else None,
        "expertise": records(st.expertise_breakdown(votes)),
        "luminance_mismatch": (study.manifest or {}).get("luminance_mismatch", []),
        "manifest_description": description,
        "manifest_items": manifest_items,
    }
