"""Statistics of real-vs-generated judgements.

Plain numpy/scipy/pandas, no Django: the same functions work on a study in the database and on an
exported votes CSV. Functions taking ``votes`` accept either a turing.analysis.tally.Tally or the long votes table
of ``turing.report.data.votes_frame`` (one row per answered scored trial; columns used here: participant,
group, source, scene, stimulus, answer, and expertise and label where present), which they tally first.

Choices, stated once:
- Rates are shares of votes judged "real". For a model's images that is its fooling rate.
- Every interval and test accounts for both samples a study draws, its participants and its images
  (scenes): turing.analysis.crossed explains the method (two-way cluster-robust variance, the pigeonhole bootstrap's
  variance without its double count) and benchmarks/calibration.py measures its coverage. These are
  ci_low/ci_high. Rates also carry the Wilson interval, wilson_low/wilson_high, which takes the votes as
  independent: it is only right when people and images do not differ, and is there for comparison.
- The per-person rate (rate_table's per_person, the summary's person_rate): the mean over participants of
  each one's own rate, R = (1 / P) sum_p k_p / n_p, over the P participants with at least one vote on the
  source. The per-vote rate k / n weighs each person by how many images they judged: when people who lean one
  way leave early more often, it drifts towards those who stayed, and R does not. Its interval: R is the mean
  of the votes weighted by w = 1 / n_p (the weights sum to P), a ratio sum(w x) / sum(w), and linearized (the
  delta method, with the n_p held as they came) each vote's influence is (judged_real - R) / (P n_p). Summed
  over a participant's votes that is (k_p / n_p - R) / P, so the participant term is the familiar
  s^2 / P of a mean of P values; summed over a scene's votes it is the image term; crossed.crossed_variance
  combines them as for the per-vote rate (coefficient 1 / P on the weighted counts, which the tally keeps per
  image as person_votes and person_real because an image's judges gave different n_p). The interval is
  Wilson's at the effective size R (1 - R) / V, as for the per-vote rate. With equal n_p for everyone both
  rates and intervals coincide.
- Model comparisons and treatment against control: the difference of rates with its crossed interval and a
  t-test on it; p-values of all model pairs are Holm-corrected.
- A statistic built from several sets of votes ("sides": a model's images and the real photos, two models)
  is linearized: each vote's influence is its side's coefficient times (judged_real - the side's rate),
  the delta method, and the crossed variance is that of the summed influences.
- Signal detection treats "generated" as the signal: a hit is a generated image judged generated, a
  false alarm a real image judged generated. z-scores use the log-linear correction of Hautus (1995),
  (k + 0.5) / (n + 1), applied to every rate (not only to 0 and 1) so d' is finite and comparably
  biased across groups; the reported hit and false-alarm rates are the uncorrected k / n.
"""

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, norm

from turing.analysis import crossed
from turing.analysis.tally import as_tally
from turing.vocabulary import CONTROL, REAL, TREATMENT

CONFIDENCE = crossed.CONFIDENCE
ALPHA = 0.05
# Fewest control participants for treatment against control to print a p-value. With fewer, the t-test's few
# degrees of freedom rest on a spread that two or three people cannot show: simulated (issue 24), 2 controls
# gave an interval 0.87 wide, and even 10 unequal controls rejected 7.2% of true nulls at 5%.
MIN_CONTROLS_FOR_P = 5
# The power at which the report states each model pair's minimum detectable difference.
DETECTION_POWER = 0.8
RATE_COLUMNS = ["votes", "judged_real", "rate", "ci_low", "ci_high", "wilson_low", "wilson_high", "participants"]
# The per-person rate: the mean over participants of each one's own rate, with its crossed interval.
PERSON_COLUMNS = ["person_rate", "person_ci_low", "person_ci_high"]
# Grouping columns every tally row carries: its images' source and its participants' group and expertise.
RATE_KEYS = ("source", "group", "expertise")


def wilson_interval(k, n, confidence=CONFIDENCE):
    """Wilson score interval for k successes in n trials, votes taken as independent; NaN where n is 0.

    Scalars give a (low, high) pair of floats, arrays a pair of arrays. Written out rather than through
    scipy's binomtest(k, n).proportion_ci(method="wilson") (the tests check they agree) because per-image
    tables need thousands of intervals per page load.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = crossed.wilson(k / n, n, norm.ppf(1 - (1 - confidence) / 2))
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def hype_infinity(fake_judged_real, fake_n, real_judged_generated, real_n):
    """HYPE-infinity as Zhou et al. (2019, "HYPE: A Benchmark for Human eYe Perceptual Evaluation of Generative
    Models", NeurIPS) publish it: the mean of the error rate on one model's fakes and the error rate on the
    real images, weighted equally. HYPE shows evaluators equally many of each, where this is the pooled
    error rate; with unequal counts only the equal-weight mean keeps its meaning: someone who always
    answers "real" (or always "generated") scores exactly 0.5, chance, and higher fools more. NaN unless
    there are fakes and reals.
    """
    if not fake_n or not real_n:
        return math.nan
    return (fake_judged_real / fake_n + real_judged_generated / real_n) / 2


def holm_adjust(p_values):
    """Holm's step-down adjusted p-values, in the input order; NaN entries stay NaN and do not count."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = len(finite)
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    # The i-th smallest p (0-based) is multiplied by m - i; the running maximum keeps the order monotone.
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def _loglinear_z(k, n):
    """z of the log-linear corrected rate (k + 0.5) / (n + 1); k and n may be arrays of bootstrap sums."""
    return norm.ppf((np.asarray(k, dtype=float) + 0.5) / (np.asarray(n, dtype=float) + 1))


def signal_detection(hits, n_signal, false_alarms, n_noise):
    """Hit rate, false-alarm rate, d' = z(H) - z(F) and criterion c = -(z(H) + z(F)) / 2.

    Signal trials show generated images, noise trials real ones. Without signal trials (a control
    group) only the false-alarm rate is defined; the rest is NaN.
    """
    hit_rate = hits / n_signal if n_signal else math.nan
    false_alarm_rate = false_alarms / n_noise if n_noise else math.nan
    if n_signal and n_noise:
        z_hit, z_false_alarm = float(_loglinear_z(hits, n_signal)), float(_loglinear_z(false_alarms, n_noise))
        d_prime, criterion = z_hit - z_false_alarm, -(z_hit + z_false_alarm) / 2
    else:
        d_prime = criterion = math.nan
    return {"hit_rate": hit_rate, "false_alarm_rate": false_alarm_rate, "d_prime": d_prime, "criterion": criterion}


def _vote_squares(k, n, rate, coefficient):
    """Sum over n votes, k of them judged real, of (coefficient * (judged_real - rate)) squared."""
    return coefficient * coefficient * (k * (1 - rate) ** 2 + (n - k) * rate * rate)


def _grouped_variance(tally, groups, coefficients, rates, n_groups, per_person=False):
    """crossed.crossed_variance of statistics whose votes are the tally rows with a group code (-1: unused).

    ``groups``, ``coefficients`` and ``rates`` hold one array per row table of the tally (by_participant,
    by_stimulus, by_cell if the tally has one): each row's influence is coefficient * (judged_real -
    rate * votes), summed over its votes. ``per_person``: each vote weighted by 1 / its participant's votes on
    its source, coefficient * (person_real - rate * person_votes) (the per-person rate).
    """
    judged_name, votes_name = ("person_real", "person_votes") if per_person else ("judged_real", "votes")
    sums, squares, votes = [], None, None
    for table, (columns, unit, group, coefficient, rate) in enumerate(
        zip(tally.row_arrays, tally.sampling_units, groups, coefficients, rates)
    ):
        used = group >= 0
        k, n = columns[judged_name][used], columns[votes_name][used]
        c, r = coefficient[used], rate[used]
        stratum = columns["group"].codes[used] if table == 0 else None
        sums.append(crossed.Sums(group[used], unit[used], c * (k - r * n), stratum))
        if table == 0:  # the participant rows hold every vote once, with one weight per row
            k, n = columns["judged_real"][used], columns["votes"][used]
            weight = c / n if per_person else c
            squares = np.bincount(group[used], weights=_vote_squares(k, n, r, weight), minlength=n_groups)
            votes = np.bincount(group[used], weights=n, minlength=n_groups)
    cells = sums[2] if len(sums) > 2 else None
    return crossed.crossed_variance(sums[0], sums[1], squares, votes, n_groups, cells=cells)


@dataclass(frozen=True)
class Side:
    """One set of votes in a statistic: the tally rows of ``source`` (and ``group``, if given), and the
    coefficient their judged-real rate enters the statistic with (to first order)."""

    source: str
    group: str | None = TREATMENT
    coefficient: float = 1.0

    def masks(self, tally):
        """One boolean array per row table of the tally."""

        def mask(columns):
            chosen = _holds(columns["source"], self.source)
            return chosen & _holds(columns["group"], self.group) if self.group else chosen

        return [mask(columns) for columns in tally.row_arrays]


def _holds(categorical, value):
    """Where a pandas Categorical holds ``value``, compared on its codes, which costs a tenth of comparing its
    values with a string."""
    categories = categorical.categories
    return categorical.codes == (categories.get_loc(value) if value in categories else len(categories))


def side_counts(tally, side, masks=None):
    """(judged_real, votes) of one side (``masks``: its masks, if already computed)."""
    columns, mask = tally.row_arrays[0], (masks or side.masks(tally))[0]
    return int(columns["judged_real"][mask].sum()), int(columns["votes"][mask].sum())


def sides_variance(tally, sides):
    """(variance, df) of a statistic whose influence is sum over sides of coefficient * (judged_real - rate)."""
    sizes = [len(rows) for rows in tally.row_tables]
    groups = [np.full(size, -1) for size in sizes]
    coefficients, rates = [np.zeros(size) for size in sizes], [np.zeros(size) for size in sizes]
    for side in sides:
        masks = side.masks(tally)
        k, n = side_counts(tally, side, masks)
        for mask, group, coefficient, rate in zip(masks, groups, coefficients, rates):
            group[mask], coefficient[mask], rate[mask] = 0, side.coefficient, k / n if n else 0.0
    variance, df, _ = _grouped_variance(tally, groups, coefficients, rates, 1)
    return float(variance[0]), float(df[0])


def _wilson_columns(table, confidence):
    table["wilson_low"], table["wilson_high"] = wilson_interval(table["judged_real"], table["votes"], confidence)
    return table


def _combinations(tally, by):
    """by_participant's combinations of the categorical columns ``by``, as key columns in the order of pandas'
    groupby(sort=False) (first appearance); and per row table, each row's combination's position among them, -1
    where by_participant lacks it. Computed on the columns' codes, which the row tables share (Tally.from_codes):
    pandas' groupby and MultiIndex lookups cost ten times the arithmetic."""
    dtypes = [tally.row_arrays[0][name].dtype for name in by]
    sizes = [len(dtype.categories) for dtype in dtypes]
    codes = [np.ravel_multi_index([columns[name].codes for name in by], sizes) for columns in tally.row_arrays]
    present, first = np.unique(codes[0], return_index=True)
    present = present[np.argsort(first)]
    position = np.full(math.prod(sizes), -1)
    position[present] = np.arange(len(present))
    keys = {
        name: pd.Categorical.from_codes(key, dtype=dtype)
        for name, key, dtype in zip(by, np.unravel_index(present, sizes), dtypes)
    }
    return keys, [position[code] for code in codes]


def _rate_interval(tally, groups, judged, votes, confidence, per_person=False):
    """The rates judged / votes of the statistics ``groups`` codes (_grouped_variance), their crossed interval and
    participants: (rate, low, high, participants) arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = judged / votes
    variance, df, participants = _grouped_variance(
        tally,
        groups,
        [1.0 / votes[group] for group in groups],
        [rate[group] for group in groups],
        len(rate),
        per_person,
    )
    return rate, *crossed.rate_interval(judged, votes, variance, df, confidence), participants


def rate_table(votes, by, confidence=CONFIDENCE, *, per_person=False):
    """Per combination of ``by`` (a subset of source, group, expertise): votes, judged_real, rate, the crossed
    interval ci_low/ci_high, the votes-independent Wilson interval wilson_low/wilson_high, and participants;
    ``per_person`` adds PERSON_COLUMNS, the per-person rate and its crossed interval."""
    tally, by = as_tally(votes), list(by)
    if not set(by) <= set(RATE_KEYS):
        raise ValueError(f"rates can be grouped by {', '.join(RATE_KEYS)}, not by {by}")
    columns = [*by, *RATE_COLUMNS, *(PERSON_COLUMNS if per_person else ())]
    if not tally.votes:
        return pd.DataFrame(columns=columns)
    keys, groups = _combinations(tally, by)
    rows = tally.row_arrays[0]
    table = pd.DataFrame(
        {
            **keys,
            "votes": np.bincount(groups[0], weights=rows["votes"]).astype(np.int64),
            "judged_real": np.bincount(groups[0], weights=rows["judged_real"]).astype(np.int64),
        }
    )
    table["rate"], table["ci_low"], table["ci_high"], table["participants"] = _rate_interval(
        tally, groups, table["judged_real"].to_numpy(), table["votes"].to_numpy(), confidence
    )
    if per_person:
        # A participant's by_participant row holds person_votes 1 and their own rate as person_real.
        table["person_rate"], table["person_ci_low"], table["person_ci_high"], _ = _rate_interval(
            tally,
            groups,
            np.bincount(groups[0], weights=rows["person_real"]),
            np.bincount(groups[0], weights=rows["person_votes"]),
            confidence,
            per_person=True,
        )
    return _wilson_columns(table, confidence)[columns]


def dropout_rates(votes, finished):
    """Whether leaving early was informative: per source and group (rows in the summary's order), the per-person
    rate among every participant who judged it (participants, person_rate) and among those who finished
    (finishers, finisher_rate; NaN without any). ``finished``: the ids (the tally's participants' participant
    column) of those who finished. Apart, these rates differ when who stays depends on how one answers."""
    tally = as_tally(votes)
    columns = ["source", "group", "participants", "person_rate", "finishers", "finisher_rate"]
    if not tally.votes:
        return pd.DataFrame(columns=columns)
    rows = tally.by_participant
    done = tally.participants["participant"].isin(finished).to_numpy()[rows["participant"].to_numpy()]
    own = pd.DataFrame(
        {
            "row": [row_label(source, group) for source, group in zip(rows["source"], rows["group"])],
            "source": rows["source"].astype(str),
            "group": rows["group"].astype(str),
            "rate": rows["person_real"],
            "finisher": np.where(done, rows["person_real"], np.nan),
        }
    )
    table = own.groupby("row").agg(
        source=("source", "first"),
        group=("group", "first"),
        participants=("rate", "size"),
        person_rate=("rate", "mean"),
        finishers=("finisher", "count"),
        finisher_rate=("finisher", "mean"),
    )
    return table.loc[row_order(table.index)].reset_index(drop=True)[columns]


def per_image_table(votes, confidence=CONFIDENCE):
    """Per stimulus, pooled over groups: votes, judged_real, rate, an interval over the participants who judged
    it (the image itself is fixed) and Wilson's; the images that fool most first."""
    tally = as_tally(votes)
    columns = ["stimulus", "scene", "source", *RATE_COLUMNS]
    if not tally.votes:
        return pd.DataFrame(columns=columns)
    counts = tally.by_stimulus.groupby("stimulus", sort=True)[["votes", "judged_real"]].sum()
    stimuli = tally.stimuli.iloc[counts.index]
    table = pd.DataFrame(
        {
            "stimulus": stimuli["stimulus"].to_numpy(),
            "scene": stimuli["scene"].to_numpy(),
            "source": stimuli["source"].to_numpy(),
            "votes": counts["votes"].to_numpy(),
            "judged_real": counts["judged_real"].to_numpy(),
        }
    )
    k, n = table["judged_real"].to_numpy(), table["votes"].to_numpy()
    table["rate"] = k / n
    variance, df = crossed.one_factor_variance(_vote_squares(k, n, k / n, 1 / n), n)
    table["ci_low"], table["ci_high"] = crossed.rate_interval(k, n, variance, df, confidence)
    table["participants"] = n
    table = _wilson_columns(table, confidence)[columns]
    return table.sort_values(["rate", "votes", "scene"], ascending=[False, False, True], ignore_index=True)


def participant_accuracy(votes):
    """Per participant: participant, label, group, expertise, votes, correct, accuracy; most accurate first."""
    tally = as_tally(votes)
    columns = ["participant", "label", "group", "expertise", "votes", "correct", "accuracy"]
    if not tally.votes:
        return pd.DataFrame(columns=columns)
    rows = tally.by_participant
    correct = np.where(rows["source"] == REAL, rows["judged_real"], rows["votes"] - rows["judged_real"])
    sums = (
        pd.DataFrame({"participant": rows["participant"], "votes": rows["votes"], "correct": correct})
        .groupby("participant", sort=True)
        .sum()
    )
    people = tally.participants.iloc[sums.index]
    table = pd.DataFrame(
        {
            "participant": people["participant"].to_numpy(),
            "label": people["label"].to_numpy(),
            "group": people["group"].astype(str).to_numpy(),
            "expertise": people["expertise"].astype(str).to_numpy(),
            "votes": sums["votes"].to_numpy(),
            "correct": sums["correct"].to_numpy(),
        }
    )
    table["accuracy"] = table["correct"] / table["votes"]
    return table.sort_values(["accuracy", "participant"], ascending=[False, True], ignore_index=True)[columns]


def row_label(source, group):
    """How a (source, group) row is named in tables: "real", "real (control)", a model's name."""
    return source if group == TREATMENT else f"{source} ({group})"


def row_order(labels):
    """Sort key for row labels: real first, then its control row, then models alphabetically."""

    def key(label):
        kind = 0 if label == REAL else 1 if label.startswith(f"{REAL} (") else 2
        return kind, label

    return sorted(labels, key=key)


def accuracy_histogram(accuracies, bins=10):
    """Number of participants per accuracy bin over [0, 1] (the last bin includes 1)."""
    counts, edges = np.histogram(np.asarray(accuracies, dtype=float), bins=bins, range=(0.0, 1.0))
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "participants": counts})


def expertise_breakdown(votes):
    """Judged-real rates per self-reported expertise and row (real, real (control), each model)."""
    columns = ["expertise", "row", *RATE_COLUMNS]
    table = rate_table(votes, ["expertise", "source", "group"])
    if table.empty:
        return pd.DataFrame(columns=columns)
    table["row"] = [row_label(source, group) for source, group in zip(table["source"], table["group"])]
    row_rank = {label: i for i, label in enumerate(row_order(table["row"].unique()))}
    # The expertise column keeps the tally's categories, turing.vocabulary.EXPERTISE: its codes rank the answers.
    order = np.lexsort((table["row"].map(row_rank), table["expertise"].cat.codes))
    table["expertise"] = table["expertise"].astype(str)
    return table.iloc[order].reset_index(drop=True)[columns]


def compare_sides(tally, side_a, side_b, confidence=CONFIDENCE):
    """Rate of side A minus rate of side B, with the crossed interval and a two-sided p-value.

    Votes of one participant or one scene on both sides are correlated, and the variance accounts for it (a
    model pair shares both participants and scenes; treatment and control share scenes only). The test is
    t = difference / sqrt(V) with min(G_P, G_S) - 1 degrees of freedom; if V is 0 (every vote on each side
    the same answer) Fisher's exact test decides and the interval is undefined (NaN). Measured false-positive
    rates at alpha 0.05 (benchmarks/calibration.py, 1,000 simulated studies per scenario): model pairs
    0.045-0.059; treatment against control 0.039-0.060, except 0.067 with 15 control participants and images
    that differ.
    Returns rate_a, rate_b, votes_a, votes_b, difference, ci_low, ci_high, se, df, p_value.
    """
    (k_a, n_a), (k_b, n_b) = side_counts(tally, side_a), side_counts(tally, side_b)
    result = {
        "rate_a": k_a / n_a if n_a else math.nan,
        "rate_b": k_b / n_b if n_b else math.nan,
        "votes_a": n_a,
        "votes_b": n_b,
    }
    if not n_a or not n_b:
        return {**result, **dict.fromkeys(["difference", "ci_low", "ci_high", "se", "df", "p_value"], math.nan)}
    difference = result["rate_a"] - result["rate_b"]
    variance, df = sides_variance(
        tally, [Side(side_a.source, side_a.group, 1 / n_a), Side(side_b.source, side_b.group, -1 / n_b)]
    )
    if variance > 0:
        p_value = crossed.t_test(difference, variance, df)
        low, high = np.clip(crossed.wald_interval(difference, variance, df, confidence), -1, 1)
    else:
        # Every vote on each side gave the same answer: nothing to estimate a spread from.
        p_value = float(fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)
        low = high = math.nan
    return {
        **result,
        "difference": difference,
        "ci_low": float(low),
        "ci_high": float(high),
        "se": math.sqrt(variance),
        "df": df,
        "p_value": p_value,
    }


def models(tally):
    """The models judged in the treatment group, sorted."""
    columns = tally.row_arrays[0]
    judged = columns["source"][_holds(columns["group"], TREATMENT)].unique()
    return sorted(set(map(str, judged)) - {REAL})


def model_comparisons(votes, *, alpha=ALPHA, power=DETECTION_POWER):
    """Every pair of models in the treatment group: fooling rates, their difference with its crossed interval
    (ci_low, ci_high), the crossed t-test's p-value and Holm's p, and min_detectable: the smallest difference
    this pair's standard error detects with probability ``power`` at Holm's strictest threshold,
    alpha / number of pairs."""
    tally = as_tally(votes)
    columns = [
        "model_a",
        "model_b",
        "votes_a",
        "rate_a",
        "votes_b",
        "rate_b",
        "difference",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "min_detectable",
    ]
    pairs = list(combinations(models(tally), 2))
    rows = []
    for model_a, model_b in pairs:
        test = compare_sides(tally, Side(model_a), Side(model_b))
        rows.append(
            {
                "model_a": model_a,
                "model_b": model_b,
                **{key: test[key] for key in columns[2:10] if key in test},
                "min_detectable": _possible(
                    crossed.minimum_detectable_difference(test["se"], test["df"], alpha=alpha / len(pairs), power=power)
                ),
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm_adjust(table["p_value"])
    return table


def _possible(difference):
    """A difference of rates, NaN where it would be more than 100 percentage points (detects nothing)."""
    return difference if difference <= 1 else math.nan


def treatment_vs_control(votes):
    """Share of real images judged real, treatment against control: the difference with its crossed interval
    and p-value (the groups share scenes, not participants), and control_participants, those of the control
    group who judged a real photo; None without both groups. Below MIN_CONTROLS_FOR_P the p-value is NaN: the
    interval, as wide as it is, says what the data say."""
    tally = as_tally(votes)
    test = compare_sides(tally, Side(REAL, TREATMENT), Side(REAL, CONTROL))
    if not test["votes_a"] or not test["votes_b"]:
        return None
    controls = Side(REAL, CONTROL).masks(tally)[0]
    participants = int(np.unique(tally.row_arrays[0]["participant"][controls]).size)
    return {
        "votes_treatment": test["votes_a"],
        "rate_treatment": test["rate_a"],
        "votes_control": test["votes_b"],
        "rate_control": test["rate_b"],
        "control_participants": participants,
        **{key: test[key] for key in ("difference", "ci_low", "ci_high")},
        "p_value": test["p_value"] if participants >= MIN_CONTROLS_FOR_P else math.nan,
    }


def hype_by_model(votes, *, confidence=CONFIDENCE):
    """Per model, in the treatment group: HYPE-infinity against the group's real photos, with its crossed
    interval (hype_low, hype_high; clipped to [0, 1])."""
    tally = as_tally(votes)
    rows = []
    k_real, n_real = side_counts(tally, Side(REAL))
    for model in models(tally):
        k_fake, n_fake = side_counts(tally, Side(model))
        hype = hype_infinity(k_fake, n_fake, n_real - k_real, n_real)
        low = high = math.nan
        if not math.isnan(hype):
            # A fake judged real is an error; a real judged real is not: the reals enter with a minus sign.
            variance, df = sides_variance(
                tally, [Side(model, coefficient=1 / (2 * n_fake)), Side(REAL, coefficient=-1 / (2 * n_real))]
            )
            low, high = (float(np.clip(bound, 0, 1)) for bound in crossed.wald_interval(hype, variance, df, confidence))
        rows.append({"model": model, "hype_infinity": hype, "hype_low": low, "hype_high": high})
    return pd.DataFrame(rows, columns=["model", "hype_infinity", "hype_low", "hype_high"])


def signal_detection_by_model(votes, *, confidence=CONFIDENCE):
    """Per model, in the treatment group: its images as signal against the group's real photos as noise, with
    hit and false-alarm rates, d' and criterion c (signal_detection), and crossed intervals of d' and c
    (d_low, d_high, c_low, c_high) from their linearization."""
    tally = as_tally(votes)
    columns = [
        "model",
        "signal_trials",
        "hits",
        "noise_trials",
        "false_alarms",
        "hit_rate",
        "false_alarm_rate",
        "d_prime",
        "d_low",
        "d_high",
        "criterion",
        "c_low",
        "c_high",
    ]
    k_real, n_real = side_counts(tally, Side(REAL))
    rows = []
    for model in models(tally):
        k_fake, n_fake = side_counts(tally, Side(model))
        row = {
            "model": model,
            "signal_trials": n_fake,
            "hits": n_fake - k_fake,
            "noise_trials": n_real,
            "false_alarms": n_real - k_real,
        }
        row.update(signal_detection(row["hits"], n_fake, row["false_alarms"], n_real))
        row.update(d_low=math.nan, d_high=math.nan, c_low=math.nan, c_high=math.nan)
        if n_fake and n_real:
            # z((k + .5) / (n + 1)) moves by 1 / ((n + 1) * pdf(z)) per vote; a hit or false alarm is a vote
            # judged generated, so judged_real enters with a minus sign.
            slope_hit = 1 / ((n_fake + 1) * norm.pdf(norm.ppf((row["hits"] + 0.5) / (n_fake + 1))))
            slope_false_alarm = 1 / ((n_real + 1) * norm.pdf(norm.ppf((row["false_alarms"] + 0.5) / (n_real + 1))))
            for name, estimate, signal, noise in (
                ("d", row["d_prime"], -slope_hit, slope_false_alarm),
                ("c", row["criterion"], slope_hit / 2, slope_false_alarm / 2),
            ):
                variance, df = sides_variance(tally, [Side(model, coefficient=signal), Side(REAL, coefficient=noise)])
                row[f"{name}_low"], row[f"{name}_high"] = (
                    float(bound) for bound in crossed.wald_interval(estimate, variance, df, confidence)
                )
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def signal_detection_by_group(votes):
    """Per group: signal (generated) and noise (real) trials, hits, false alarms, rates, d', criterion."""
    rows_in = as_tally(votes).by_participant
    rows = []
    for group in (TREATMENT, CONTROL):
        in_group = rows_in[rows_in["group"] == group]
        if in_group.empty:
            continue
        is_real = (in_group["source"] == REAL).to_numpy()
        said_generated = (in_group["votes"] - in_group["judged_real"]).to_numpy()
        counts = {
            "signal_trials": int(in_group["votes"].to_numpy()[~is_real].sum()),
            "hits": int(said_generated[~is_real].sum()),
            "noise_trials": int(in_group["votes"].to_numpy()[is_real].sum()),
            "false_alarms": int(said_generated[is_real].sum()),
        }
        rows.append(
            {
                "group": group,
                **counts,
                **signal_detection(
                    counts["hits"], counts["signal_trials"], counts["false_alarms"], counts["noise_trials"]
                ),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "group",
            "signal_trials",
            "hits",
            "noise_trials",
            "false_alarms",
            "hit_rate",
            "false_alarm_rate",
            "d_prime",
            "criterion",
        ],
    )
