"""Statistics of real-vs-generated judgements.

Plain numpy/scipy/pandas, no Django: the same functions work on a study in the database and on an
exported votes CSV. Functions taking ``votes`` expect the long format of ``turing.reporting.votes_frame``
(one row per answered scored trial; columns used here: participant, group, source, answer, correct,
stimulus, scene, expertise).

Choices, stated once:
- Rates are shares of votes judged "real". For a model's images that is its fooling rate.
- Two 95% intervals per rate: Wilson (votes taken as independent) and a percentile bootstrap that
  resamples participants, because one person's votes are correlated (HYPE reports this one, with
  10,000 resamples over evaluators).
- Model comparisons use Fisher's exact test on the 2x2 table of judged real / judged generated: it is
  exact at poster-session sample sizes where a z-test's normal approximation is poor. Like the z-test,
  it treats votes as independent, so its p-values are optimistic when participants differ a lot;
  the bootstrap intervals show that spread. p-values of all model pairs are Holm-corrected.
- Signal detection treats "generated" as the signal: a hit is a generated image judged generated, a
  false alarm a real image judged generated. z-scores use the log-linear correction of Hautus (1995),
  (k + 0.5) / (n + 1), applied to every rate (not only to 0 and 1) so d' is finite and comparably
  biased across groups; the reported hit and false-alarm rates are the uncorrected k / n.
"""

import math

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, norm

REAL = "real"
GENERATED = "generated"
TREATMENT = "treatment"
CONTROL = "control"
NOT_ANSWERED = "not answered"
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
# Resamples drawn per numpy call: bounds memory at this many x participants indices.
_RESAMPLE_CHUNK = 1_000

RATE_COLUMNS = ["votes", "judged_real", "rate", "ci_low", "ci_high", "participants"]


def wilson_interval(k, n, confidence=CONFIDENCE):
    """Wilson score interval for k successes in n trials; NaN where n is 0.

    Scalars give a (low, high) pair of floats, arrays a pair of arrays. Written out rather than through
    scipy's binomtest(k, n).proportion_ci(method="wilson") (the tests check they agree) because per-image
    tables need thousands of intervals per page load.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    z = norm.ppf(1 - (1 - confidence) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denominator = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def bootstrap_participants(successes, trials, *, n_resamples=N_RESAMPLES, confidence=CONFIDENCE, seed=0):
    """Percentile interval of sum(successes) / sum(trials) over participants resampled with replacement.

    ``successes[i]`` and ``trials[i]`` are participant i's counts (every trials[i] >= 1). Returns
    (nan, nan) without participants. Same seed, same interval.
    """
    successes = np.asarray(successes, dtype=float)
    trials = np.asarray(trials, dtype=float)
    if successes.shape != trials.shape or successes.ndim != 1:
        raise ValueError("successes and trials must be 1-d arrays of the same length (one entry per participant)")
    if (trials < 1).any() or (successes < 0).any() or (successes > trials).any():
        raise ValueError("every participant needs 1 <= trials and 0 <= successes <= trials")
    if len(trials) == 0:
        return math.nan, math.nan
    sums = _resampled_sums([successes, trials], n_resamples, seed)
    return _percentile_interval(sums[:, 0] / sums[:, 1], confidence)


def _resampled_sums(columns, n_resamples, seed):
    """(n_resamples, len(columns)) array: each column's sum over participants resampled with replacement.

    ``columns`` are per-participant counts of equal length; every column is summed over the same draw.
    """
    columns = np.asarray(columns, dtype=float)
    n_participants = columns.shape[1]
    rng = np.random.default_rng(seed)
    sums = np.empty((n_resamples, len(columns)))
    for start in range(0, n_resamples, _RESAMPLE_CHUNK):
        size = min(_RESAMPLE_CHUNK, n_resamples - start)
        picks = rng.integers(0, n_participants, size=(size, n_participants), dtype=np.int32)
        sums[start:start + size] = np.take(columns, picks, axis=1).sum(axis=2).T
    return sums


def _percentile_interval(estimates, confidence):
    """Percentile interval of bootstrap estimates; resamples where the estimate is undefined are left out."""
    estimates = estimates[~np.isnan(estimates)]
    if not len(estimates):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return float(low), float(high)


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


def bootstrap_hype_infinity(fake_judged_real, fake_n, real_judged_generated, real_n, *, n_resamples=N_RESAMPLES,
                            confidence=CONFIDENCE, seed=0):
    """Percentile interval of hype_infinity over participants resampled with replacement.

    Each argument holds one count per participant (a participant may have no fakes or no reals); a resample
    without fakes or without reals has no HYPE-infinity and is left out.
    """
    if len(fake_n) == 0:
        return math.nan, math.nan
    sums = _resampled_sums([fake_judged_real, fake_n, real_judged_generated, real_n], n_resamples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        estimates = (sums[:, 0] / sums[:, 1] + sums[:, 2] / sums[:, 3]) / 2
    return _percentile_interval(estimates, confidence)


def compare_proportions(k_a, n_a, k_b, n_b):
    """Fisher's exact test (two-sided) of k_a/n_a against k_b/n_b: {"odds_ratio", "p_value"}."""
    if n_a == 0 or n_b == 0:
        return {"odds_ratio": math.nan, "p_value": math.nan}
    result = fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])
    return {"odds_ratio": float(result.statistic), "p_value": float(result.pvalue)}


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


def signal_detection_by_model(votes, *, n_resamples=N_RESAMPLES, confidence=CONFIDENCE, seed=0):
    """Per model, in the treatment group: its images as signal against the group's real photos as noise, with
    hit and false-alarm rates, d' and criterion c (signal_detection), and participant-bootstrap intervals of
    d' and c (d_low, d_high, c_low, c_high; resamples without signal or noise trials left out)."""
    columns = ["model", "signal_trials", "hits", "noise_trials", "false_alarms", "hit_rate", "false_alarm_rate",
               "d_prime", "d_low", "d_high", "criterion", "c_low", "c_high"]
    treated = votes[votes["group"] == TREATMENT]
    reals = treated[treated["source"] == REAL]
    rows = []
    for model in sorted(set(treated["source"]) - {REAL}):
        fakes_judged_real, fakes, false_alarms, noise = per_participant_hype_counts(
            treated[treated["source"] == model], reals)
        hits = fakes - fakes_judged_real
        counts = {"signal_trials": int(fakes.sum()), "hits": int(hits.sum()), "noise_trials": int(noise.sum()),
                  "false_alarms": int(false_alarms.sum())}
        sums = _resampled_sums([hits, fakes, false_alarms, noise], n_resamples, seed)
        z_hit, z_false_alarm = _loglinear_z(sums[:, 0], sums[:, 1]), _loglinear_z(sums[:, 2], sums[:, 3])
        defined = (sums[:, 1] > 0) & (sums[:, 3] > 0)
        d_low, d_high = _percentile_interval(np.where(defined, z_hit - z_false_alarm, np.nan), confidence)
        c_low, c_high = _percentile_interval(np.where(defined, -(z_hit + z_false_alarm) / 2, np.nan), confidence)
        rows.append({"model": model, **counts, **signal_detection(
            counts["hits"], counts["signal_trials"], counts["false_alarms"], counts["noise_trials"]),
            "d_low": d_low, "d_high": d_high, "c_low": c_low, "c_high": c_high})
    return pd.DataFrame(rows, columns=columns)


def row_label(source, group):
    """How a (source, group) row is named in tables: "real", "real (control)", a model's name."""
    return source if group == TREATMENT else f"{source} ({group})"


def row_order(labels):
    """Sort key for row labels: real first, then its control row, then models alphabetically."""
    def key(label):
        kind = 0 if label == REAL else 1 if label.startswith(f"{REAL} (") else 2
        return kind, label

    return sorted(labels, key=key)


def _judged_real(votes):
    return votes.assign(judged_real=(votes["answer"] == REAL).astype(int))


def rate_table(votes, by):
    """Per group of ``by`` columns: votes, judged_real, rate, Wilson ci_low/ci_high, participants."""
    if votes.empty:
        return pd.DataFrame(columns=[*by, *RATE_COLUMNS])
    table = (
        _judged_real(votes)
        .groupby(by, sort=False, dropna=False)
        .agg(votes=("answer", "size"), judged_real=("judged_real", "sum"), participants=("participant", "nunique"))
        .reset_index()
    )
    table["rate"] = table["judged_real"] / table["votes"]
    table["ci_low"], table["ci_high"] = wilson_interval(table["judged_real"], table["votes"])
    return table[[*by, *RATE_COLUMNS]]


def per_participant_counts(votes, successes):
    """Per participant: (successes, votes) count arrays, the input of bootstrap_participants.

    ``successes`` is a boolean Series aligned with ``votes`` (e.g. judged real, or judged wrongly).
    """
    counts = pd.DataFrame({"participant": votes["participant"], "k": successes.astype(int)}).groupby(
        "participant", sort=True).agg(k=("k", "sum"), n=("k", "size"))
    return counts["k"].to_numpy(), counts["n"].to_numpy()


def per_participant_hype_counts(fakes, reals):
    """Per participant who judged any of ``fakes`` or ``reals`` (votes tables): fakes judged real, fakes,
    reals judged generated, reals, as four aligned arrays, the input of bootstrap_hype_infinity."""
    errors = pd.concat([
        pd.DataFrame({"participant": fakes["participant"], "fake_wrong": (fakes["answer"] == REAL).astype(int),
                      "fake": 1, "real_wrong": 0, "real": 0}),
        pd.DataFrame({"participant": reals["participant"], "fake_wrong": 0, "fake": 0,
                      "real_wrong": (reals["answer"] != REAL).astype(int), "real": 1}),
    ]).groupby("participant", sort=True).sum()
    return tuple(errors[column].to_numpy() for column in ("fake_wrong", "fake", "real_wrong", "real"))


def per_image_table(votes):
    """Per stimulus, pooled over groups: votes, judged_real, rate; the images that fool most first."""
    table = rate_table(votes, ["stimulus", "scene", "source"])
    return table.sort_values(["rate", "votes", "scene"], ascending=[False, False, True], ignore_index=True)


def participant_accuracy(votes):
    """Per participant: group, expertise, votes, correct, accuracy; most accurate first."""
    columns = ["participant", "group", "expertise", "votes", "correct", "accuracy"]
    if votes.empty:
        return pd.DataFrame(columns=columns)
    table = (
        votes.assign(correct=votes["correct"].astype(int), expertise=votes["expertise"].fillna(NOT_ANSWERED))
        .groupby(["participant", "group", "expertise"], sort=False)
        .agg(votes=("correct", "size"), correct=("correct", "sum"))
        .reset_index()
    )
    table["accuracy"] = table["correct"] / table["votes"]
    return table.sort_values(["accuracy", "participant"], ascending=[False, True], ignore_index=True)[columns]


def accuracy_histogram(accuracies, bins=10):
    """Number of participants per accuracy bin over [0, 1] (the last bin includes 1)."""
    counts, edges = np.histogram(np.asarray(accuracies, dtype=float), bins=bins, range=(0.0, 1.0))
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "participants": counts})


def expertise_breakdown(votes):
    """Judged-real rates per self-reported expertise and row (real, real (control), each model)."""
    columns = ["expertise", "row", *RATE_COLUMNS]
    if votes.empty:
        return pd.DataFrame(columns=columns)
    labelled = votes.assign(
        expertise=votes["expertise"].fillna(NOT_ANSWERED),
        row=[row_label(s, g) for s, g in zip(votes["source"], votes["group"])],
    )
    table = rate_table(labelled, ["expertise", "row"])
    row_rank = {label: i for i, label in enumerate(row_order(table["row"].unique()))}
    expertise_rank = {"yes": 0, "no": 1, NOT_ANSWERED: 2}
    order = np.lexsort((table["row"].map(row_rank), table["expertise"].map(expertise_rank)))
    return table.iloc[order].reset_index(drop=True)[columns]


def model_comparisons(votes):
    """Every pair of models in the treatment group: fooling rates, Fisher's exact p and Holm's p."""
    columns = ["model_a", "model_b", "votes_a", "rate_a", "votes_b", "rate_b", "difference", "odds_ratio",
               "p_value", "p_holm"]
    treated = votes[(votes["group"] == TREATMENT) & (votes["source"] != REAL)]
    counts = rate_table(treated, ["source"]).set_index("source")
    models = sorted(counts.index)
    rows = []
    for i, model_a in enumerate(models):
        for model_b in models[i + 1:]:
            a, b = counts.loc[model_a], counts.loc[model_b]
            rows.append({
                "model_a": model_a, "model_b": model_b,
                "votes_a": int(a["votes"]), "rate_a": a["rate"], "votes_b": int(b["votes"]), "rate_b": b["rate"],
                "difference": a["rate"] - b["rate"],
                **compare_proportions(a["judged_real"], a["votes"], b["judged_real"], b["votes"]),
            })
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm_adjust(table["p_value"])
    return table


def treatment_vs_control(votes):
    """Share of real images judged real, treatment against control (Fisher's exact); None without both."""
    reals = votes[votes["source"] == REAL]
    counts = rate_table(reals, ["group"]).set_index("group")
    if TREATMENT not in counts.index or CONTROL not in counts.index:
        return None
    treated, control = counts.loc[TREATMENT], counts.loc[CONTROL]
    return {
        "votes_treatment": int(treated["votes"]), "rate_treatment": treated["rate"],
        "votes_control": int(control["votes"]), "rate_control": control["rate"],
        "difference": treated["rate"] - control["rate"],
        **compare_proportions(treated["judged_real"], treated["votes"], control["judged_real"], control["votes"]),
    }


def signal_detection_by_group(votes):
    """Per group: signal (generated) and noise (real) trials, hits, false alarms, rates, d', criterion."""
    rows = []
    for group in [g for g in (TREATMENT, CONTROL) if g in set(votes["group"])]:
        in_group = votes[votes["group"] == group]
        said_generated = in_group["answer"] == GENERATED
        is_real = in_group["source"] == REAL
        counts = {
            "signal_trials": int((~is_real).sum()), "hits": int((said_generated & ~is_real).sum()),
            "noise_trials": int(is_real.sum()), "false_alarms": int((said_generated & is_real).sum()),
        }
        rows.append({"group": group, **counts, **signal_detection(
            counts["hits"], counts["signal_trials"], counts["false_alarms"], counts["noise_trials"])})
    return pd.DataFrame(rows, columns=["group", "signal_trials", "hits", "noise_trials", "false_alarms",
                                       "hit_rate", "false_alarm_rate", "d_prime", "criterion"])
