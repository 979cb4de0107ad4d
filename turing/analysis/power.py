"""How many participants a study needs to tell two models' fooling rates apart: power by simulating the
report's own test. Plain numpy, pandas and statsmodels, no Django: the plan_study command and the staff
planner page share it.

Why simulation and not a formula. Votes are crossed: every participant judges many images and every image
is judged by many participants, so the variance of a difference of rates has a participant part that
shrinks with the number of people and an image part that does not (Westfall, Kenny and Judd 2014,
"Statistical power and optimal design in experiments in which samples of participants respond to samples
of stimuli", J. Experimental Psychology: General 143(5)). Their closed form is for a linear mixed model
fitted by REML; the report runs something else, a two-way cluster-robust t-test on binary votes with
min(participants, scenes) - 1 degrees of freedom (turing.analysis.crossed), whose power no textbook formula gives.
Power is most reliably found by simulating many studies from the assumed model and running the very
analysis that will be run on the real data, counting how often it rejects (Arnold, Hogan, Colford and
Hubbard 2011, "Simulation methods to estimate design power: an overview for applied research", BMC
Medical Research Methodology 11:94; DeBruine and Barr 2021, "Understanding mixed-effects models through
data simulation", Advances in Methods and Practices in Psychological Science 4(1)). So each simulated
study here is drawn by turing.analysis.simulation (people and images differing on the logit scale) and judged by
turing.analysis.statistics.model_comparisons, the function behind the report's model comparison table.

The search for the smallest sufficient number of participants:
- Every study a plan simulates has its own random stream, spawned from one seed, so the answer is
  reproducible and a study's images are the same whatever its number of participants.
- Doubling finds a bracket (power below target at lo, at or above at hi), then bisection narrows it to
  RESOLUTION of hi (or one participant) and answers hi: the Monte Carlo error of the answer is larger
  (at the default number of simulations, a standard error of 0.023 in power is about 2 participants at
  36, where power climbs fast, and about 7 at 75, where it climbs more slowly), so finer steps would only
  cost time. During bisection
  every N is evaluated on the first N participants of the same simulated studies of hi participants
  (participants are independent given the images, so those are studies of N participants): common
  random numbers make the curve nearly monotone, where independent draws at each N would make
  neighbouring N disagree by their Monte Carlo error.
- A point whose power falls clearly short of the target (CLEAR_Z standard errors below it) stops
  simulating early: the doubling steps far below the target, and the cap when it is far out of reach,
  cost a few dozen studies instead of all of them. Only a shortfall ends early, so every number of
  participants called sufficient rests on all the simulations asked for. Each point of the curve says how
  many studies it rests on.
- The search stops at MAX_PARTICIPANTS. With images that differ and a fixed number of scenes, power
  levels off below 1 however many people take part; more scenes help then.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import norm

from colorization.errors import UserError
from turing.analysis.simulation import Design, simulate_votes
from turing.analysis.statistics import model_comparisons, row_label
from turing.vocabulary import REAL, TREATMENT

DEFAULT_SCENES = 100
# Beyond this a logit-scale spread means every answer is all but fixed by who and what; the rates the plan asks
# for cannot then be met.
MAX_SD = 10.0
MAX_PARTICIPANTS = 5000
# 24 to 31 s of one CPU core (measured) for the example, alike or differing people and images (the
# cost is nearly all the report's analysis, about 10 ms a study); the Monte Carlo standard error of a power
# near 0.8 is then 0.023.
DEFAULT_SIMULATIONS = 300
# Where doubling starts: points far below the target stop early, so starting low costs little.
FIRST_GUESS = 8
# How close bisection brings the bracket, as a share of its top (the module docstring says why no closer).
RESOLUTION = 0.02
# How many standard errors below the target a point's power must be before its simulations stop early.
CLEAR_Z = 3.0
# Simulated studies a point rests on at least before it may stop early: a handful of studies can sit
# several binomial standard errors off by chance.
MIN_SIMULATIONS = 20
# The two simulated models; model_comparisons sorts them, so A is the baseline.
BASELINE_MODEL, COMPARED_MODEL = "a-baseline", "b-compared"


class PlanError(UserError):
    """Settings or a pilot study that no power analysis can be planned from; the message names the setting."""


@dataclass(frozen=True)
class Plan:
    """What a study is to detect: model B's fooling rate differs from model A's (``baseline``) by
    ``difference``, each participant judges ``trials_per_model`` images of each of the two models, drawn
    from ``scenes`` scenes; participants and images differ by ``participant_sd`` and ``image_sd`` on the
    logit scale. Raises PlanError, naming the setting, for a plan that cannot be simulated."""

    baseline: float
    difference: float
    trials_per_model: int
    participant_sd: float = 0.0
    image_sd: float = 0.0
    scenes: int = DEFAULT_SCENES
    power: float = 0.8
    alpha: float = 0.05
    models: int = 2

    def __post_init__(self):
        if not 0 < self.baseline < 1:
            raise PlanError(f"the baseline rate must lie strictly between 0 and 1, got {self.baseline}")
        if self.difference == 0:
            raise PlanError("the difference must not be 0: a study cannot be planned to detect no difference")
        if not 0 < self.compared < 1:
            raise PlanError(f"baseline + difference must lie strictly between 0 and 1, got {self.compared:g}")
        if self.trials_per_model < 1:
            raise PlanError(f"trials per model must be at least 1, got {self.trials_per_model}")
        if 2 * self.trials_per_model > self.scenes:
            raise PlanError(
                f"each participant needs 2 x {self.trials_per_model} distinct scenes and the plan has "
                f"{self.scenes}: raise the number of scenes or lower the trials per model"
            )
        if not (0 <= self.participant_sd <= MAX_SD and 0 <= self.image_sd <= MAX_SD):
            raise PlanError(
                f"the participant and image standard deviations must lie between 0 and {MAX_SD} "
                "(logit scale; 1 is already a large spread)"
            )
        if not 0 < self.power < 1:
            raise PlanError(f"the power must lie strictly between 0 and 1, got {self.power}")
        if not 0 < self.alpha < 1:
            raise PlanError(f"alpha must lie strictly between 0 and 1, got {self.alpha}")
        if self.models < 2:
            raise PlanError(f"a comparison needs at least 2 models, got {self.models}")

    @property
    def pairs(self):
        return self.models * (self.models - 1) // 2

    @property
    def test_alpha(self):
        """The level a pair must reach: the report Holm-corrects over all pairs, and the pair with the smallest
        p-value is tested at alpha / pairs, Holm's strictest step (so this plans for detecting at least one)."""
        return self.alpha / self.pairs

    @property
    def compared(self):
        return self.baseline + self.difference

    def design(self, participants):
        return Design(
            participants=participants,
            scenes=self.scenes,
            trials_per_model=self.trials_per_model,
            rates={BASELINE_MODEL: self.baseline, COMPARED_MODEL: self.compared},
            participant_sd=self.participant_sd,
            image_sd=self.image_sd,
        )


# The settings a plan is made of, as the command's options and the planner page's fields name them.
PLAN_SETTINGS = tuple(field.name for field in fields(Plan))


@dataclass(frozen=True)
class PowerPoint:
    """Power at one number of participants: the share of ``simulations`` studies whose test rejected, and
    its Monte Carlo standard error sqrt(p (1 - p) / simulations)."""

    participants: int
    power: float
    se: float
    simulations: int


@dataclass(frozen=True)
class PowerResult:
    """The search's outcome. ``point`` is the power at participants_needed, or, when even max_participants
    fall short of the target (reached False, participants_needed None), at max_participants. ``curve`` holds
    every point evaluated, by number of participants; ``simulations`` is the number asked for per point."""

    plan: Plan
    participants_needed: int | None
    reached: bool
    point: PowerPoint
    simulations: int
    seed: int
    max_participants: int
    curve: list

    def as_dict(self):
        return {
            "participants_needed": self.participants_needed,
            "uncertainty": uncertainty(self),
            "reached": self.reached,
            "power": self.point.power,
            "power_se": self.point.se,
            "simulations": self.simulations,
            "seed": self.seed,
            "max_participants": self.max_participants,
            "plan": asdict(self.plan),
            "curve": [asdict(point) for point in self.curve],
        }


def _rejects(votes, alpha):
    # Two models are simulated; with more, Holm's first step tests the smallest p at alpha / pairs (test_alpha).
    p_value = model_comparisons(votes, alpha=alpha)["p_value"].iloc[0]
    return bool(p_value < alpha)


def power_at(n_participants, plan, simulations, seed, *, drawn_from=None, stop_below=None):
    """Share of ``simulations`` studies of ``n_participants`` under ``plan`` in which the report's test of
    the two models rejects at plan.test_alpha, as a PowerPoint.

    Each study is the first n_participants of a simulated study of ``drawn_from`` (default
    n_participants) participants, study i drawn from the i-th stream spawned from ``seed``: the same seed
    and drawn_from give the same people and images at every n_participants. With ``stop_below`` (a target
    power), simulating stops once the estimate is CLEAR_Z standard errors below it.
    """
    if n_participants < 2:
        raise ValueError(f"the test needs at least 2 participants, got {n_participants}")
    drawn_from = drawn_from or n_participants
    design = plan.design(drawn_from)
    rejections = done = 0
    for stream in np.random.SeedSequence(seed).spawn(simulations):
        votes = simulate_votes(design, np.random.default_rng(stream))
        if drawn_from > n_participants:
            votes = votes[votes["participant"] < n_participants]
        rejections += _rejects(votes, plan.test_alpha)
        done += 1
        # A one-sided test of power == target, with the target's standard error: the estimate's own would be
        # 0 after a run of studies that all reject or all do not, and would end a point on luck.
        if (
            stop_below is not None
            and MIN_SIMULATIONS <= done < simulations
            and stop_below - rejections / done > CLEAR_Z * np.sqrt(stop_below * (1 - stop_below) / done)
        ):
            break
    share = rejections / done
    return PowerPoint(n_participants, share, float(np.sqrt(share * (1 - share) / done)), done)


def participants_needed(plan, *, simulations=DEFAULT_SIMULATIONS, seed=0, max_participants=MAX_PARTICIPANTS):
    """The smallest number of participants whose simulated power reaches plan.power, as a PowerResult
    (search described in the module docstring)."""
    if simulations < 1:
        raise PlanError(f"the number of simulations must be at least 1, got {simulations}")
    if seed < 0:
        raise PlanError(f"the seed must be zero or more, got {seed}")
    if max_participants < 2:
        raise PlanError(f"the largest number of participants searched must be at least 2, got {max_participants}")
    curve = {}

    def evaluate(n, drawn_from=None):
        curve[n] = power_at(n, plan, simulations, seed, drawn_from=drawn_from, stop_below=plan.power)
        return curve[n].power >= plan.power

    # lo: the largest N known to fall short (1: none tested), hi: the smallest known to suffice.
    lo, n = 1, min(FIRST_GUESS, max_participants)
    while not evaluate(n):
        if n == max_participants:
            return PowerResult(plan, None, False, curve[n], simulations, seed, max_participants, _by_size(curve))
        lo, n = n, min(2 * n, max_participants)
    hi = drawn_from = n
    while hi - lo > max(1, RESOLUTION * hi):
        middle = (lo + hi) // 2
        if evaluate(middle, drawn_from):
            hi = middle
        else:
            lo = middle
    return PowerResult(plan, hi, True, curve[hi], simulations, seed, max_participants, _by_size(curve))


def _by_size(curve):
    return [curve[n] for n in sorted(curve)]


@dataclass(frozen=True)
class PilotEstimate:
    """What a pilot's votes say about a study like it: participant and image standard deviations on the
    logit scale, and the pilot's scored scenes and trials per model (the median over its treatment
    participants and models), with the numbers of votes and participants they rest on."""

    participant_sd: float
    image_sd: float
    scenes: int
    trials_per_model: int
    votes: int
    participants: int


def estimate_sds(votes, seed=0, scenes=None):
    """PilotEstimate from a votes table (turing.report.data.votes_frame: people, scored trials). ``scenes`` is the
    pilot study's number of scored scenes, which a short pilot's votes may not all reach (default: those
    they reach).

    The model is the simulation's: logit P(real) = mean of the row (source, and group for the real photos,
    so that a control group judging reals differently is not taken for participants differing) + a
    participant effect + an image (stimulus) effect, each effect normal with its own standard deviation.
    statsmodels' BinomialBayesMixedGLM fits it by variational Bayes (fit_vb); its variance parameters are
    log standard deviations with a normal posterior, and exp of their posterior mean (the posterior median
    of the sd, what its summary() reports) is the estimate. The log-normal prior never puts an sd at 0:
    a pilot of alike people and images gets small positive sds (0.2 to 0.35 with a few dozen people),
    which errs toward more participants; variational Bayes shrinks large sds a little (measured on 40
    simulated people: 0.86 and 0.80 for true 0.9 and 1.0). ``seed`` fixes the fit's random starting
    point, which it otherwise draws afresh.
    """
    # Imported here: turing.staff.forms imports this module, and only a pilot needs it.
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    if votes.empty:
        raise PlanError("the pilot has no votes (scored votes of people; rehearsal bots do not count)")
    treated_fakes = votes[(votes["group"] == TREATMENT) & (votes["source"] != REAL)]
    if treated_fakes.empty:
        raise PlanError("the pilot has no votes on generated images in its treatment group")
    if votes["participant"].nunique() < 2:
        raise PlanError("the pilot needs votes from at least 2 participants to estimate how much they differ")
    rows = np.arange(len(votes))
    participant, people = pd.factorize(votes["participant"])
    stimulus, images = pd.factorize(votes["stimulus"])
    # One indicator column per participant and per image, built sparse: from_formula would first build them
    # dense, votes x (people + images) numbers, hundreds of megabytes for a full study used as a pilot.
    effects = sparse.hstack(
        [
            sparse.csr_array((np.ones(len(votes)), (rows, participant)), shape=(len(votes), len(people))),
            sparse.csr_array((np.ones(len(votes)), (rows, stimulus)), shape=(len(votes), len(images))),
        ]
    ).tocsr()
    means = pd.get_dummies([row_label(source, group) for source, group in zip(votes["source"], votes["group"])])
    model = BinomialBayesMixedGLM(
        (votes["answer"] == REAL).to_numpy(dtype=float),
        means.to_numpy(dtype=float),
        effects,
        np.repeat([0, 1], [len(people), len(images)]),
        vcp_names=["participant", "stimulus"],
    )
    # L-BFGS-B, not the default BFGS, which keeps a dense matrix over every effect's mean and sd: measured on
    # 40 to 300 simulated participants, the same sds to three decimals in a tenth to a thirtieth of the time.
    sds = dict(zip(model.vcp_names, np.exp(model.fit_vb(fit_method="L-BFGS-B", rng=seed).vcp_mean)))
    per_model = treated_fakes.groupby(["participant", "source"]).size()
    return PilotEstimate(
        participant_sd=float(sds["participant"]),
        image_sd=float(sds["stimulus"]),
        scenes=scenes or int(votes["scene"].nunique()),
        trials_per_model=max(1, round(per_model.median())),
        votes=len(votes),
        participants=int(votes["participant"].nunique()),
    )


def plan_from(settings, estimate_pilot=None):
    """(Plan, PilotEstimate or None) from ``settings``, Plan's fields with None where not given.

    A pilot supplies the standard deviations and, where not given, the scenes and trials per model; without
    one the sds are 0 and the scenes DEFAULT_SCENES. ``estimate_pilot`` returns the pilot's PilotEstimate;
    it is called only once the settings are known to be consistent, because the fit takes seconds.
    Raises PlanError for a pilot together with an sd, or trials per model missing, or a Plan's error.
    """
    settings = {key: value for key, value in settings.items() if value is not None}
    if estimate_pilot is not None and {"participant_sd", "image_sd"} & settings.keys():
        raise PlanError(
            "give either a pilot study or the standard deviations, not both: the pilot's votes estimate them"
        )
    if estimate_pilot is None and "trials_per_model" not in settings:
        raise PlanError("the trials per model are needed unless a pilot study supplies them")
    pilot = None
    if estimate_pilot is not None:
        pilot = estimate_pilot()
        settings = {
            "trials_per_model": pilot.trials_per_model,
            "scenes": pilot.scenes,
            **settings,
            "participant_sd": pilot.participant_sd,
            "image_sd": pilot.image_sd,
        }
    return Plan(**settings), pilot


def uncertainty(result):
    """About how many participants the answer could be off by from Monte Carlo error alone: two standard
    errors of power over the slope of the power curve at the answer, the slope read off a probit-of-power
    against log-participants line through every point with all its simulations (None without two such
    points). The bisection's own neighbouring points share their simulated studies, so their slope is
    too steep to say this. Measured: seeds 0 to 6 answered 56 to 79 where the 80% point is about 62, and
    seed 0's 79 comes out +-18."""
    full = [point for point in result.curve if point.simulations == result.simulations and 0 < point.power < 1]
    if not result.reached or len({point.participants for point in full}) < 2:
        return None
    steepness, _ = np.polyfit(
        np.log([point.participants for point in full]), norm.ppf([point.power for point in full]), 1
    )
    slope = norm.pdf(norm.ppf(result.point.power)) * steepness / result.point.participants
    return None if slope <= 0 else max(1, round(2 * result.point.se / slope))


def answer(result):
    """The planner's answer in one sentence (two when images that differ cap the power, or the Monte Carlo
    error of the answer is worth saying)."""
    plan, point = result.plan, result.point
    level = f"alpha {plan.alpha:g}" + (f" / {plan.pairs} pairs (Holm's strictest step)" if plan.pairs > 1 else "")
    test = (
        f"the report's test tells fooling rates of {plan.baseline:.1%} and {plan.compared:.1%} apart with "
        f"power {point.power:.3f} (Monte Carlo standard error {point.se:.3f}) at {level}"
    )
    if result.reached:
        sentence = f"{result.participants_needed} participants are needed: with {point.participants}, {test}."
        spread = uncertainty(result)
        if spread:
            sentence += (
                f" Simulation error alone makes this number uncertain by about ±{spread}; more simulations narrow that."
            )
        return sentence
    sentence = (
        f"Even {result.max_participants} participants do not reach power {plan.power:g}: "
        f"with {point.participants}, {test}."
    )
    if plan.image_sd > 0:
        sentence += (
            f" Images that differ hold power down however many people take part; more than "
            f"{plan.scenes} scenes raise it."
        )
    return sentence


def assumptions(result, pilot=None, pilot_name=None):
    """The plan behind an answer, as sentences; ``pilot`` (its PilotEstimate) and ``pilot_name`` say
    where the standard deviations came from."""
    plan = result.plan
    if pilot is not None:
        origin = (
            f"estimated from pilot {pilot_name} ({pilot.votes} votes by {pilot.participants} people, "
            f"{pilot.scenes} scenes, {pilot.trials_per_model} trials per model)"
        )
    else:
        origin = "as given"
    return [
        f"Model A is judged real {plan.baseline:.1%} of the time and model B {plan.compared:.1%} "
        f"(a difference of {100 * plan.difference:+.1f} percentage points); the test is two-sided at alpha "
        f"{plan.alpha:g}"
        + (
            f", divided by the {plan.pairs} pairs of {plan.models} models as Holm's correction tests the first"
            if plan.pairs > 1
            else ""
        )
        + f", and the target power is {plan.power:g}.",
        f"Each participant judges {plan.trials_per_model} images of each model, on distinct scenes drawn from "
        f"{plan.scenes}.",
        f"On the logit scale participants differ with standard deviation {plan.participant_sd:.2f} and images "
        f"with {plan.image_sd:.2f}, {origin}.",
        f"{result.simulations} simulated studies per point (fewer where the power fell clearly short of "
        f"the target), seed {result.seed}; the search stops at {result.max_participants} participants.",
    ]
