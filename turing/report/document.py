"""The staff report as one document: a list of titled sections, each a table with its notes and figures, that the
staff page (turing/templates/turing/staff/_section.html) and manage.py study_report (turing.report.text) both
draw. Every number is formatted here, once, so that the page and the text show the same figures."""

from dataclasses import dataclass
from datetime import timedelta

from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from turing.analysis.statistics import MIN_CONTROLS_FOR_P, row_label
from turing.participant.answers import EXPOSURE_IMAGE_GRACE
from turing.protocols import protocol_of
from turing.report.cache import cached, metric_tables, report_tables
from turing.report.data import EXPOSURE_TOLERANCE_MS, FEW, PER_PERSON, PER_VOTE, REPORT_ROWS, Selection
from turing.report.provenance import provenance
from turing.sections import CI, MUTED, NUM, Column, Figure, Mark, Section
from turing.templatetags.staff_format import decimal, interval, percent, pvalue
from turing.vocabulary import CONTROL


def _n(rate, votes):
    return f"{percent(rate)} (n = {votes})"


def _participant(row, key="participant"):
    return Mark("code", str(row[key]), after=f" {row['label']}" if row["label"] else "")


def _plural(count, one="", many="s"):
    return one if count == 1 else many


def counted_section(study, tables, selection):
    """Who and what the figures below count: a warning when the images may differ in more than colour, the
    rehearsal bots, the attention checks. The page adds its switches after it; study_report its options."""
    warnings, differed = [], []
    if study.luminance_mismatch_allowed:
        differed = (study.manifest or {}).get("luminance_mismatch", [])
        warnings.append(
            format_html(
                "This study was imported with <code>--allow-luminance-mismatch</code>: its generated images may "
                "differ from the real photos in lightness or detail, a cue other than colour. Fooling rates may be "
                "lower than the colours alone would give.{}",
                f" At import, {len(differed)} image{_plural(len(differed))} differed:" if differed else "",
            )
        )
    bots = tables["participation"]["bots_left_out"]
    if selection.include_bots:
        lead = [mark_safe("Counting <strong>rehearsal bots</strong> together with people.")]
    elif bots:
        lead = [format_html("Counting people only ({} rehearsal bot{} left out).", bots, _plural(bots))]
    else:
        lead = [mark_safe("Counting people only.")]
    attention = tables["attention"]
    if attention:
        unchecked = attention["unchecked"]
        if selection.exclude_failed_checks:
            excluded = attention["excluded"]
            after = format_html(
                ". <strong>Everything below is computed without {} ({}).</strong>",
                "that participant" if excluded == 1 else "those participants",
                excluded,
            )
        else:
            after = mark_safe(".")
        lead.append(
            format_html(
                "Attention checks: <strong>{}</strong> of {} participant{} who answered one called an obviously "
                "wrong colorization real{}{}",
                attention["failed"],
                attention["checked"],
                _plural(attention["checked"]),
                format_html(
                    "; {} participant{} counted here answered none (they stopped before one)",
                    unchecked,
                    _plural(unchecked),
                )
                if unchecked
                else "",
                after,
            )
        )
    return Section(
        "",
        name="counted",
        warnings=warnings,
        lead=lead,
        columns=[Column("Differed at import")] if differed else [],
        rows=[[problem] for problem in differed],
    )


def exposure_section(flags):
    """How far the exposures the browser achieved were from the ones asked (data.exposure_flags)."""
    measured, unmeasured, flagged = flags["measured"], flags["unmeasured"], flags["flagged"]
    said = f"{measured} timed trial{_plural(measured)} measured by the browser"
    if unmeasured:
        said += f", {unmeasured} not measured (no JavaScript, or the answer came before the image was hidden)"
    said += (
        " (from the display frame that revealed the image, once loaded and decoded, to the one that hid it). "
        "The server starts a timed image's clock when it first serves the image, names it to nobody before its "
        f"trial, and refuses it once its exposure plus {EXPOSURE_IMAGE_GRACE / timedelta(milliseconds=1):.0f} ms "
        "have passed"
    )
    if flagged:
        off = format_html(
            '<strong class="warning">{} trial{} showed the image{} for more than one frame ({} ms) longer or shorter '
            "than asked</strong> (a background tab, a busy device, a slow display): they are counted below; check "
            "them in the votes CSV (<code>exposure_ms</code>, <code>achieved_exposure_ms</code>).",
            flagged,
            _plural(flagged),
            _plural(flagged),
            EXPOSURE_TOLERANCE_MS,
        )
    else:
        off = f"None was off by more than one frame ({EXPOSURE_TOLERANCE_MS} ms)."
    return Section(
        "Exposure achieved",
        name="exposure",
        lead=[format_html("{}. {}", said, off)],
        columns=[
            Column("Participant"),
            Column("Kind"),
            Column("Position", NUM),
            Column("Images"),
            Column("Asked (ms)", NUM),
            Column("Achieved (ms)", NUM),
        ],
        rows=[
            [
                _participant(row),
                row["kind"],
                row["position"],
                row["source"],
                row["exposure_ms"],
                row["achieved_exposure_ms"],
            ]
            for row in flags["rows"]
        ],
    )


@dataclass(frozen=True)
class Judged:
    """What a study's participants judged, which decides the sections and notes its report shows: whether it has
    a control group, whether anyone judged a real photo on its own (what false alarms, d′ and the list of real
    photos judged generated are made of; not under 2afc, whose real photos always come paired) and whether the
    study's protocol gives HYPE∞ (turing.protocols, Protocol.reports_hype_infinity)."""

    control: bool
    real_photos: bool
    hype_infinity: bool


def judged(study, tables):
    protocol = protocol_of(study)
    # As the headline counts decide whether to split people by group: a control group planned, or one that came.
    control = bool(study.control_fraction or tables["headline"]["started"][CONTROL])
    return Judged(control, control or protocol.real_fraction(study) > 0, protocol.reports_hype_infinity(study))


def _summary_notes(shown):
    # 83%: P(|Z| < 1.96 / √2), two normal estimates of equal spread (docs/statistics.md, Crossed intervals).
    notes = [
        "<strong>Two rates per row, the per-person rate first (the report's primary rate): the mean over "
        "participants of each one's own share judged real, so that everyone counts once however many images they "
        "judged.</strong> The per-vote rate, second, is the share of all votes judged real: it weighs people by how "
        "many images they judged, so when those who leave early answer differently from those who stay it drifts "
        "towards those who stayed (the dropout line below shows whether they did). With as many images for everyone "
        "the two are the same.",
        "<strong>Each 95% interval accounts for both samples the study drew, its participants and its images: it "
        "gives plausible values for the rate among people and images like these</strong> (two-way cluster-robust "
        "variance, Cameron, Gelbach &amp; Miller 2011: the pigeonhole bootstrap's variance of Owen 2007 without its "
        "double count). It is not the range another study's rate will fall in: that rate varies too, and the rate "
        "of a new study of the same size lands inside about 83% of the time.",
        "For a model, the rate is its <em>fooling rate</em>: the share of its images judged real. The Wilson "
        "interval (of the per-vote rate) treats every vote as independent, which is only right when people and "
        "images do not differ; it is there for comparison.",
    ]
    if shown.hype_infinity:
        notes.append(
            "HYPE∞ is, as Zhou et al. (2019) publish it, the mean of two error rates weighted equally: the model's "
            "images judged real, and the treatment group's real images judged generated (per vote); 50% is chance, "
            "and someone who always gives the same answer scores exactly 50% whatever the share of real images."
        )
    if shown.control:
        notes.append(
            "The row <code>real (control)</code> is the control group, who saw only real photos under the same "
            "instructions: its share judged generated is the false-alarm base rate."
        )
    # Literal text only: nothing of the study's is in it.
    return mark_safe(" ".join(notes))


def summary_section(tables, shown):
    """The rates per source, both per person and per vote, with the columns and notes of what was judged."""
    cells = [
        (Column("Images"), lambda row: row_label(row["source"], row["group"])),
        *([(Column("Group"), lambda row: row["group"])] if shown.control else []),
        (Column("Votes", NUM), lambda row: row["votes"]),
        (Column("Participants", NUM), lambda row: row["participants"]),
        (Column(f"Rate {PER_PERSON}", NUM), lambda row: Mark("strong", percent(row["person_rate"]))),
        (Column("95% interval", CI), lambda row: Mark("strong", interval(row["person_ci_low"], row["person_ci_high"]))),
        (Column(f"Rate {PER_VOTE}", NUM), lambda row: percent(row["rate"])),
        (Column("95% interval", CI), lambda row: interval(row["ci_low"], row["ci_high"])),
        (Column("Votes judged real", NUM), lambda row: row["judged_real"]),
        (
            Column("Wilson 95% (votes independent)", f"{CI} {MUTED}"),
            lambda row: interval(row["wilson_low"], row["wilson_high"]),
        ),
    ]
    if shown.hype_infinity:
        cells += [
            (Column(f"HYPE∞ {PER_VOTE}", NUM), lambda row: percent(row["hype_infinity"])),
            (Column("HYPE∞ 95%", CI), lambda row: interval(row["hype_low"], row["hype_high"])),
        ]
    return Section(
        "Judged real, per source",
        name="summary",
        figures=[
            Figure(
                "staff:report_chart",
                "Bar chart of the share of votes judged real per source",
                "Share of votes judged real (the per-vote rate); error bars are 95% intervals over participants and "
                "images; the dashed line is 50%.",
            )
        ],
        columns=[column for column, _ in cells],
        rows=[[cell(row) for _, cell in cells] for row in tables["summary"]],
        empty="No votes yet.",
        notes=[_summary_notes(shown), dropout_line(tables)],
    )


def dropout_line(tables):
    """Started and finished, and the per-person rate among those who finished against among everyone: apart, who
    left early answered differently from who stayed."""
    started, finished = tables["headline"]["started"]["total"], tables["headline"]["finished"]["total"]
    rates = "; ".join(
        f"{row_label(row['source'], row['group'])} {percent(row['finisher_rate'])} (n = {row['finishers']}) "
        f"against {percent(row['person_rate'])} (n = {row['participants']})"
        for row in tables["dropout"]
    )
    return format_html(
        "<strong>Dropout:</strong> {} started, {} finished ({} left before the end).{}",
        started,
        finished,
        started - finished,
        f" Per-person rate among those who finished against among everyone who judged the images: {rates}."
        if rates
        else "",
    )


def treatment_vs_control_section(tables):
    versus = tables["treatment_vs_control"]
    section = Section("Real photos: treatment against control", name="treatment-vs-control")
    if not versus:
        section.lead = [mark_safe("Needs votes on real photos from both a treatment and a control group.")]
        return section
    section.columns = [
        Column(f"Treatment: judged real {PER_VOTE}", NUM),
        Column(f"Control: judged real {PER_VOTE}", NUM),
        Column("Difference", NUM),
        Column("95% interval", CI),
        Column("p", NUM),
    ]
    section.rows = [
        [
            _n(versus["rate_treatment"], versus["votes_treatment"]),
            _n(versus["rate_control"], versus["votes_control"]),
            percent(versus["difference"]),
            interval(versus["ci_low"], versus["ci_high"]),
            pvalue(versus["p_value"]),
        ]
    ]
    note = mark_safe(
        "The groups are different people judging the same real photos; the interval and the t-test account for both."
    )
    if versus["ci_low"] is None:
        note += mark_safe(
            " <strong>No interval or p-value yet:</strong> a group with a single participant says nothing about how "
            "its participants differ; both need two or more."
        )
    elif versus["p_value"] is None:
        controls = versus["control_participants"]
        note += format_html(
            " <strong>No p-value with {} control participant{}:</strong> below {} the test cannot keep its level "
            "(the spread of so few people is a guess), so only the interval is given, as wide as it is.",
            controls,
            _plural(controls),
            MIN_CONTROLS_FOR_P,
        )
    section.notes = [note]
    return section


def comparisons_section(tables):
    section = Section("Model against model", name="comparisons")
    if not tables["comparisons"]:
        section.lead = [mark_safe("Needs at least two models with votes.")]
        return section
    section.columns = [
        Column("Model A"),
        Column("Model B"),
        Column(f"A fools ({PER_VOTE})", NUM),
        Column(f"B fools ({PER_VOTE})", NUM),
        Column("Difference", NUM),
        Column("95% interval", CI),
        Column("p", NUM),
        Column("p (Holm)", NUM),
        Column("Detectable at 80% power", NUM),
    ]
    section.rows = [
        [
            row["model_a"],
            row["model_b"],
            _n(row["rate_a"], row["votes_a"]),
            _n(row["rate_b"], row["votes_b"]),
            percent(row["difference"]),
            interval(row["ci_low"], row["ci_high"]),
            pvalue(row["p_value"]),
            Mark("strong", pvalue(row["p_holm"])),
            f"±{percent(row['min_detectable'])}",
        ]
        for row in tables["comparisons"]
    ]
    section.notes = [
        format_html(
            "The difference in fooling rate (per vote) with its 95% interval over participants and images, and a "
            "two-sided t-test on it, Holm-corrected over all model pairs. “Detectable at 80% power” is the smallest "
            "true difference this pair's current votes would detect four times in five at Holm's strictest level (0.05 "
            "divided by the number of pairs): a difference smaller than that going undetected says little. To plan "
            'how many people a study needs, use the <a href="{}">planner</a>.',
            reverse("staff:plan"),
        )
    ]
    if tables["few_people_and_scenes"]:
        section.notes.append(
            format_html(
                "<strong>Few participants and few scenes:</strong> with both under {}, these p-values are somewhat "
                "optimistic (in simulated studies of 15 people and 12 scenes, 7% of identical model pairs came out "
                "below 0.05 instead of 5%). More of either fixes it.",
                FEW,
            )
        )
    return section


def signal_detection_sections(tables, shown):
    by_group = Section(
        "Signal detection",
        name="signal-detection",
        columns=[
            Column("Group"),
            Column("Generated shown", NUM),
            Column(f"Hit rate {PER_VOTE}", NUM),
            Column("Real shown", NUM),
            Column(f"False-alarm rate {PER_VOTE}", NUM),
            Column("d′", NUM),
            Column("Criterion c", NUM),
        ],
        rows=[
            [
                row["group"],
                row["signal_trials"],
                percent(row["hit_rate"]),
                row["noise_trials"],
                percent(row["false_alarm_rate"]),
                decimal(row["d_prime"]),
                decimal(row["criterion"]),
            ]
            for row in tables["signal_detection"]
        ],
        empty="No votes yet.",
    )
    by_model = Section(
        "",
        level=3,
        name="signal-detection-by-model",
        columns=[
            Column("Model (treatment group)"),
            Column(f"Hit rate {PER_VOTE}", NUM),
            Column(f"False-alarm rate {PER_VOTE}", NUM),
            Column("d′", NUM),
            Column("d′ 95%", CI),
            Column("Criterion c", NUM),
            Column("c 95%", CI),
        ],
        rows=[
            [
                row["model"],
                _n(row["hit_rate"], row["signal_trials"]),
                _n(row["false_alarm_rate"], row["noise_trials"]),
                decimal(row["d_prime"]),
                f"{decimal(row['d_low'])} – {decimal(row['d_high'])}",
                decimal(row["criterion"]),
                f"{decimal(row['c_low'])} – {decimal(row['c_high'])}",
            ]
            for row in tables["signal_detection_by_model"]
        ],
        empty="No votes on generated images yet.",
        notes=[
            mark_safe(
                '"Generated" is the signal: a hit is a generated image judged generated, a false alarm a real photo '
                "judged generated. d′ = z(H) − z(F) and c = −(z(H) + z(F)) / 2 use the log-linear correction "
                "(k + 0.5) / (n + 1) (Hautus 1995) so that rates of 0 or 1 stay finite; the rates shown are "
                'uncorrected. d′ = 0: people cannot tell the images apart; c &gt; 0: a leaning towards "real".'
                + (
                    " The control group saw no generated images, so only its false-alarm rate is defined."
                    if shown.control
                    else ""
                )
            )
        ],
    )
    return [by_group, by_model]


def _image_list(title, name, images, *, with_model, empty, **section):
    """A list of images with their votes and judged-real rate (each image's interval over its participants)."""
    model = [Column("Model")] if with_model else []
    return Section(
        title,
        name=name,
        columns=[
            Column("Image"),
            Column("Scene"),
            *model,
            Column("Votes", NUM),
            Column(f"Judged real {PER_VOTE}", NUM),
            Column("95% interval", CI),
            Column("Image token"),
        ],
        rows=[
            [
                Mark("image", row["stimulus"]),
                row["scene"],
                *([row["source"]] if with_model else []),
                row["votes"],
                percent(row["rate"]),
                interval(row["ci_low"], row["ci_high"]),
                Mark("code", row["stimulus"]),
            ]
            for row in images
        ],
        empty=empty,
        **section,
    )


def image_sections(tables, shown):
    """The images that fooled most and, where real photos were judged on their own, the real photos judged
    generated most often; the note (under the last) says what the lists pool and where they are cut."""
    note = "An image's interval is over the participants who judged it."
    if shown.control:
        note = "Pooled over both groups; real photos also collect the control group's votes. " + note
    fooling_total, doubted_total = tables["fooling_images_total"], tables["doubted_real_images_total"]
    if shown.real_photos and (fooling_total > REPORT_ROWS or doubted_total > REPORT_ROWS):
        note += (
            f" Each list shows its first {REPORT_ROWS} of {fooling_total} generated and {doubted_total} real images; "
            "the votes CSV has all of them."
        )
    elif fooling_total > REPORT_ROWS:
        note += f" The list shows its first {REPORT_ROWS} of {fooling_total} images; the votes CSV has all of them."
    fooling = _image_list(
        "Which images fool most",
        "fooling-images",
        tables["fooling_images"],
        with_model=True,
        empty="No votes on generated images yet.",
    )
    if not shown.real_photos:
        fooling.notes = [mark_safe(note)]
        return [fooling]
    doubted = _image_list(
        "Real photos most often judged generated",
        "doubted-real-images",
        tables["doubted_real_images"],
        with_model=False,
        empty="No votes on real photos yet.",
        level=3,
        notes=[mark_safe(note)],
    )
    return [fooling, doubted]


def _rho(row):
    if row["rho"] is None:
        return ["—", row["note"]]
    if row["ci_low"] is None:
        return [Mark("strong", decimal(row["rho"])), row["note"]]
    return [Mark("strong", decimal(row["rho"])), f"{decimal(row['ci_low'])} – {decimal(row['ci_high'])}"]


def metric_sections(metrics):
    correlations = Section("Do the metrics predict what fools people?", name="metrics")
    if not metrics["metric_correlations"]:
        correlations.lead = [mark_safe("Needs votes on generated images that have metrics.")]
        return [correlations]
    correlations.columns = [
        Column("Model"),
        Column("Metric"),
        Column("Images (n)", NUM),
        Column("Votes", NUM),
        Column("Spearman ρ", NUM),
        Column("95% interval (bootstrap over images)", CI),
    ]
    correlations.rows = [
        [row["model"], row["metric"], f"n = {row['images']}", row["votes"], *_rho(row)]
        for row in metrics["metric_correlations"]
    ]
    correlations.figures = [
        Figure(
            "staff:report_metrics_chart",
            "Scatter plots of each image's share judged real against each of its metrics, one row per model",
            "One point per generated image with votes: its metric against the share of its votes that judged it real.",
            full_size=True,
        )
    ]
    correlations.notes = [
        format_html(
            "Each generated image's metrics are measured against the real photo of its scene, on the images "
            "participants saw: PSNR, SSIM and AuC are higher and ab error lower the closer its colours are to the "
            "photo's; colourfulness is the image's own (Hasler and Süsstrunk). ρ is Spearman's rank correlation, per "
            "model, between a metric and the share of votes that judged the image real: ρ &gt; 0 means images "
            "scoring higher on that metric fooled people more often. <strong>n is the number of images, not of "
            "votes, and the interval is wide unless n is large</strong> (in simulations, about 1.2 wide with 10 "
            "images and 0.6 with 30); no ρ is given for fewer than {} images. The interval resamples images (a study "
            "samples scenes, and ρ describes how a model's images spread); it does not count that another sample of "
            "people would give every image another rate, nor that one person's leniency raises the rate of every "
            "image they judged, so it may be too narrow when few people judged each image. Few votes per image also "
            "make each rate noisy, which pulls ρ towards 0. With several models and metrics, about one interval in "
            "twenty misses its true value by chance.",
            metrics["metric_min_images"],
        )
    ]
    total = metrics["metric_images_total"]
    images = Section(
        "",
        level=3,
        name="metric-images",
        folded=(
            f"The {REPORT_ROWS} most convincing images of each model, of {total} judged generated images (the CSV has "
            "every image)"
            if metrics["metric_images_cut"]
            else f"Every judged generated image ({total})"
        ),
        columns=[
            Column("Image"),
            Column("Model"),
            Column("Scene"),
            Column("Votes", NUM),
            Column(f"Judged real {PER_VOTE}", NUM),
            Column("PSNR (dB)", NUM),
            Column("SSIM", NUM),
            Column("ab error", NUM),
            Column("AuC", NUM),
            Column("Colourfulness", NUM),
        ],
        rows=[
            [
                Mark("image", row["stimulus"]),
                row["model"],
                row["scene"],
                row["votes"],
                percent(row["rate"]),
                decimal(row["psnr"]),
                decimal(row["ssim"], 3),
                decimal(row["ab_error"]),
                decimal(row["auc"], 3),
                decimal(row["colourfulness"], 1),
            ]
            for row in metrics["metric_images"]
        ],
    )
    return [correlations, images]


def accuracy_sections(tables):
    total = tables["participant_accuracy_total"]
    widest = tables["accuracy_histogram_max"]
    histogram = Section(
        "Participants' accuracy",
        name="histogram",
        lead=[
            format_html(
                "Mean accuracy {}: <strong>{}</strong> over {} participant{} (each one's share of correct answers, "
                "averaged).",
                PER_PERSON,
                percent(tables["mean_accuracy"]),
                total,
                _plural(total),
            )
        ],
        columns=[
            Column("Accuracy"),
            Column("Participants", NUM),
            Column("Bar of the participants", "bar-cell", title_hidden=True),
        ],
        rows=[
            [
                f"{percent(row['low'], 0)} – {percent(row['high'], 0)}",
                row["participants"],
                Mark("bar", width=round(100 * row["participants"] / widest) if widest else 0),
            ]
            for row in tables["accuracy_histogram"]
        ],
    )
    people = Section(
        "",
        level=3,
        name="participant-accuracy",
        folded=(
            f"The most and the least accurate {REPORT_ROWS} of {total} participants (the votes CSV has everyone)"
            if total > REPORT_ROWS
            else "Every participant"
        ),
        columns=[
            Column("Participant (id, label)"),
            Column("Group"),
            Column("Expertise"),
            Column("Votes", NUM),
            Column("Correct", NUM),
            Column("Accuracy", NUM),
        ],
        rows=[
            [_participant(row), row["group"], row["expertise"], row["votes"], row["correct"], percent(row["accuracy"])]
            for row in tables["participant_accuracy"]
        ],
    )
    return [histogram, people]


def _rate_rows(rows, first):
    return [
        [
            row[first],
            row["row"],
            row["votes"],
            row["participants"],
            percent(row["rate"]),
            interval(row["ci_low"], row["ci_high"]),
        ]
        for row in rows
    ]


def _rate_columns(first):
    return [
        Column(first),
        Column("Images"),
        Column("Votes", NUM),
        Column("Participants", NUM),
        Column(f"Judged real {PER_VOTE}", NUM),
        Column("95% interval", CI),
    ]


def expertise_section(study, tables):
    return Section(
        "By self-reported expertise",
        name="expertise",
        lead=[format_html("Question: “{}”", study.expertise_question)] if study.ask_expertise else [],
        columns=_rate_columns("Expertise"),
        rows=_rate_rows(tables["expertise"], "expertise"),
        empty="No votes yet.",
    )


def cohort_section(tables):
    return Section(
        "By cohort",
        name="cohorts",
        lead=[
            mark_safe(
                "How participants came: a poster's QR code, a kiosk, Prolific, MTurk or another link. Each cohort's "
                "rates are computed from its own participants, with the same intervals as above."
            )
        ],
        columns=_rate_columns("Cohort"),
        rows=_rate_rows(tables["cohorts"], "cohort"),
        empty="No votes yet.",
    )


def button_order_section(tables):
    return Section(
        "By button order: a position check",
        name="button-order",
        lead=[
            mark_safe(
                "Each participant saw the two answer buttons in one order, first (on the left, or on top where they "
                "stack) to second, drawn so that within each group half had <em>Real</em> first and half "
                "<em>Generated</em> first."
            )
        ],
        columns=[
            Column("Images"),
            Column("Buttons"),
            Column("Participants", NUM),
            Column("Votes", NUM),
            Column(f"Judged real {PER_VOTE}", NUM),
        ],
        rows=[
            [row["row"], row["buttons"], row["participants"], row["votes"], percent(row["rate"])]
            for row in tables["button_orders"]
        ],
        empty="No votes yet.",
        notes=[
            mark_safe(
                "People who lean towards the first button (or the left one) judge more images real with Real first "
                "than with Generated first, on every row alike: a gap between a row's two rates is that leaning, not "
                "a property of the images, and the balanced orders cancel it in the rates above, which pool both. "
                "With few participants per order the two rates also differ by chance."
            )
        ],
    )


def timed_out_section(study, tables):
    total, listed, minutes = tables["timed_out_total"], tables["timed_out"], study.time_limit_minutes
    lead = format_html(
        "{} participant{} did not finish within the study's time limit of {} minute{} and {} left out of every "
        "statistic in this report{}.",
        total,
        _plural(total),
        minutes,
        _plural(minutes),
        "is" if total == 1 else "are",
        f" (the first {len(listed)} are listed)" if total > len(listed) else "",
    )
    return Section(
        "Returned or timed out",
        name="timed-out",
        lead=[lead],
        columns=[
            Column("Participant"),
            Column("Cohort"),
            Column("Started"),
            Column("Finished"),
            Column("Scored answers", NUM),
        ],
        rows=[
            [
                _participant(row, "pk"),
                row["cohort"],
                f"{row['started_at']:%Y-%m-%d %H:%M}",
                f"{row['finished_at']:%Y-%m-%d %H:%M}" if row["finished_at"] else "—",
                row["answered"],
            ]
            for row in listed
        ],
    )


def provenance_sections(manifest):
    made = provenance(manifest)
    chosen = Section(
        "How stimuli were chosen",
        name="provenance-runs",
        lead=[
            format_html("{}", made["description"])
            if made["description"]
            else mark_safe(
                "This study records no selection procedure (it was made from folders of images or in the admin). "
                "Say in any write-up how the images were picked (randomly or by hand)."
            )
        ],
    )
    if made["runs"]:
        chosen.columns = [
            Column("Run"),
            Column("Model"),
            Column("Checkpoint"),
            Column("Step", NUM),
            Column("Seed", NUM),
            Column("Model options"),
            Column("Saturation"),
        ]
        chosen.rows = [
            [
                run["name"],
                run["model"],
                Mark("code", run["checkpoint"]),
                run["step"],
                run["seed"],
                run["options"],
                run["saturation"],
            ]
            for run in made["runs"]
        ]
    if not made["rows"]:
        return [chosen]
    record = Section(
        "",
        level=3,
        name="provenance",
        columns=[Column("", heads_row=True), Column("")],
        rows=[
            [row["label"], Mark("items", items=tuple(row["items"])) if row["items"] else row["value"]]
            for row in made["rows"]
        ],
        notes=[mark_safe("Paths are shown as file and folder names only; the admin keeps the full record.")],
    )
    return [chosen, record]


def build_report(study, selection=Selection()):
    """The report of ``study`` over the votes ``selection`` keeps, as a list of Sections, in the order shown:
    the protocol's own sections and the exposures, the rates and their comparisons, the images, the metrics,
    the participants, and how the stimuli were made. Cached like the tables it is drawn from."""
    return cached("document", study, selection, _build_report)


def _build_report(study, selection, version):
    tables = report_tables(study, selection)
    shown = judged(study, tables)
    sections = [counted_section(study, tables, selection), *tables["protocol_sections"]]
    if tables["exposure_flags"]:
        sections.append(exposure_section(tables["exposure_flags"]))
    sections.append(summary_section(tables, shown))
    if shown.control:
        sections.append(treatment_vs_control_section(tables))
    sections.append(comparisons_section(tables))
    if shown.real_photos:
        sections += signal_detection_sections(tables, shown)
    sections += [
        *image_sections(tables, shown),
        *metric_sections(metric_tables(study, selection)),
        *accuracy_sections(tables),
        expertise_section(study, tables),
        cohort_section(tables),
    ]
    if tables["button_orders"] is not None:
        sections.append(button_order_section(tables))
    if study.time_limit_minutes:
        sections.append(timed_out_section(study, tables))
    return sections + provenance_sections(study.manifest)
