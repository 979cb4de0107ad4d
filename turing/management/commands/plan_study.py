import json
from dataclasses import asdict

from django.core.management.base import BaseCommand, CommandError

from turing.analysis import power
from turing.management.study_options import study_or_error
from turing.report.data import pilot_estimate


class Command(BaseCommand):
    help = (
        "Print the number of participants a study needs to tell two models' fooling rates apart, found by "
        "simulating studies and running the report's own test on each (turing.analysis.power). Participants and "
        "images differ by --participant-sd and --image-sd on the logit scale, or by what a pilot study's "
        "votes (--pilot, people only) say."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--baseline",
            type=float,
            required=True,
            metavar="RATE",
            help="Share of model A's images judged real, e.g. 0.30.",
        )
        parser.add_argument(
            "--difference",
            type=float,
            required=True,
            metavar="D",
            help="How much more (or, negative, less) model B's images are judged real, e.g. 0.10.",
        )
        parser.add_argument(
            "--trials-per-model",
            type=int,
            metavar="N",
            help="Images of each model per participant (with --pilot: the pilot's by default).",
        )
        parser.add_argument(
            "--participant-sd",
            type=float,
            metavar="S",
            help="How much participants differ, on the logit scale (default 0).",
        )
        parser.add_argument(
            "--image-sd", type=float, metavar="S", help="How much images differ, on the logit scale (default 0)."
        )
        parser.add_argument(
            "--pilot",
            metavar="SLUG",
            help="Estimate the standard deviations (and scenes, trials per model) from this "
            "study's votes; not together with --participant-sd or --image-sd.",
        )
        parser.add_argument(
            "--scenes",
            type=int,
            metavar="N",
            help=f"Scenes the images are drawn from (default {power.DEFAULT_SCENES}, or the pilot's).",
        )
        parser.add_argument("--power", type=float, default=0.8, help="Target power (default 0.8).")
        parser.add_argument("--alpha", type=float, default=0.05, help="Two-sided test level (default 0.05).")
        parser.add_argument(
            "--models",
            type=int,
            default=2,
            metavar="K",
            help="Models the study compares (default 2): the report Holm-corrects over their "
            "pairs, so the test is planned at alpha / pairs.",
        )
        parser.add_argument(
            "--simulations",
            type=int,
            default=power.DEFAULT_SIMULATIONS,
            metavar="N",
            help=f"Simulated studies per number of participants (default "
            f"{power.DEFAULT_SIMULATIONS}, about half a minute).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the simulations (default 0).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args, pilot, simulations, seed, **options):
        settings = {key: options[key] for key in power.PLAN_SETTINGS}

        def estimate_pilot():
            study = study_or_error(pilot)
            return pilot_estimate(study, seed)

        try:
            plan, estimate = power.plan_from(settings, None if pilot is None else estimate_pilot)
            result = power.participants_needed(plan, simulations=simulations, seed=seed)
        except power.PlanError as error:
            raise CommandError(f"{error}.") from error
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        **result.as_dict(),
                        "pilot": None if estimate is None else {"slug": pilot, **asdict(estimate)},
                    }
                )
            )
            return
        self.stdout.write(power.answer(result))
        self.stdout.write("\nAssumptions:")
        for line in power.assumptions(result, estimate, f"'{pilot}'"):
            self.stdout.write(f"- {line}")
        self.stdout.write("\nPower curve:")
        self.stdout.write(f"{'participants':>12} {'power':>6} {'std. error':>10} {'studies':>8}")
        for point in result.curve:
            self.stdout.write(f"{point.participants:>12} {point.power:>6.3f} {point.se:>10.3f} {point.simulations:>8}")
