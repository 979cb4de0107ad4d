"""The whole system in one command: bundled photos -> split -> two trained models -> a Turing test.

Each step keeps what an earlier run left (photos, split, finished runs, the study), so running the demo
again goes straight to serving. Models are trained for a few CPU minutes on ~50 crops: enough to show the
pipeline and the statistics working, not to fool anybody.
"""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.urls import reverse

from turing.models import Study
from turing.network import DEFAULT_PORT, LOOPBACK_WARNING, lan_address, port_in_use, serve_command, site_url

MODELS = ("perceptual", "koalarization")
# The pretrained network each model depends on, by its training option.
BACKBONE_OPTIONS = {"perceptual": "vgg_weights", "koalarization": "irv2_weights"}
# Koalarization in CPU minutes: its frozen Inception-ResNet-v2 sees 128x128 instead of 299x299 (4x cheaper), and
# embeds each distinct input once (--cache-features): the demo's photos are square, so the random crop is the
# whole photo and only the flip varies.
DEMO_TRAINING = {"koalarization": {"model_opts": {"backbone_size": 128}, "cache_features": True}}
# In the workdir: the staff accounts the demo created, with their passwords (the workdir is git-ignored).
STAFF_LOGIN_FILE = "staff-login.json"


class Command(BaseCommand):
    help = "Build a demo dataset, train both colorizers briefly, build the 'demo' study and serve it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workdir",
            type=Path,
            default=settings.BASE_DIR / "demo-data",
            help="Where photos, the split and the runs go (default: demo-data/).",
        )
        parser.add_argument("--no-serve", action="store_true", help="Do everything but start the server.")
        parser.add_argument("--steps", type=int, default=60, help="Training steps per model.")
        parser.add_argument("--image-size", type=int, default=64)
        parser.add_argument(
            "--width",
            type=float,
            default=0.5,
            help="Channel-width multiplier of both networks (1.0 is the paper's size).",
        )
        parser.add_argument("--crops-per-photo", type=int, default=6)
        parser.add_argument("--n-scenes", type=int, default=16)
        parser.add_argument("--trials", type=int, default=12)
        parser.add_argument(
            "--backbones",
            choices=["auto", "none"],
            default="auto",
            help="auto: pretrained VGG16 / Inception-ResNet-v2 when their weights can be loaded, "
            "random otherwise; none: always random (no download attempted).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"Port to serve on (default {DEFAULT_PORT}), as manage.py serve.",
        )
        parser.add_argument(
            "--host",
            help="The address phones use to reach this machine (default: its address on "
            "the network), as manage.py serve.",
        )
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Give the staff account the demo created a new password (DEMO_ADMIN_PASSWORD, or a "
            "random one) instead of keeping the one it has.",
        )

    def handle(self, *args, **options):
        workdir = options["workdir"].resolve()
        if not options["no_serve"] and port_in_use(options["port"]):
            # Said before minutes of training, not after them.
            raise CommandError(
                f"port {options['port']} is in use (a demo or serve still running?): stop it, or "
                f"choose another: make demo PORT=8001 (manage.py demo --port 8001)"
            )
        # `make demo` migrates first; `manage.py demo` on a fresh clone must not fail after minutes of training.
        call_command("migrate", interactive=False, verbosity=0)
        self.backbone_weights = "imagenet" if options["backbones"] == "auto" else "none"
        split_dir = self.prepare_data(workdir, options)
        try:
            runs = {name: self.train(name, split_dir, workdir / "runs" / name, options) for name in MODELS}
        except KeyboardInterrupt:
            # Training saved its last step (colorization.train); the next run of the demo resumes it.
            self.stderr.write(
                "Stopped. Run the demo again to carry on: it keeps the photos, the split and the saved training runs."
            )
            raise SystemExit(130) from None
        self.build_study(split_dir, runs, options)
        self.step("4/4 Ready")
        for line in self.staff_login(workdir, reset=options["reset_password"]):
            self.stdout.write(f"  {line}")
        address = options["host"] or lan_address()
        base = site_url(address, options["port"])
        join, report = base + reverse("turing:join", args=["demo"]), base + reverse("staff:report", args=["demo"])
        if options["no_serve"]:
            if address is None:
                self.stderr.write(self.style.ERROR(LOOPBACK_WARNING))
            self.stdout.write(
                f"  Serve it with: {serve_command('demo', options['port'])}   (participants {join}, report {report})"
            )
        else:
            self.stdout.write(f"  Serving with gunicorn; the report is at {report}")
            # The address found here, so that serve neither looks it up again nor warns a second time.
            call_command("serve", port=options["port"], study="demo", host=address)

    def step(self, message):
        self.stdout.write(self.style.MIGRATE_HEADING(message))

    def prepare_data(self, workdir, options):
        from colorization.demo_data import CROPS_OF_ONE_PHOTO, PHOTOS, write_demo_photos
        from colorization.split import make_split

        self.step("1/4 Demo photos: crops of scikit-image's bundled colour photos")
        photos = write_demo_photos(workdir / "photos", crops_per_photo=options["crops_per_photo"])
        split_dir = workdir / "split"
        # Split by photo, not by crop: a held-out crop of a photo the models trained on would flatter them.
        split = make_split(workdir / "photos", split_dir, holdout_frac=1 / 3, seed=0, group_by=CROPS_OF_ONE_PHOTO)
        self.stdout.write(
            f"  {len(photos)} crops of {len(PHOTOS)} photos in {workdir / 'photos'}; split by photo in {split_dir}: "
            f"{len(split.train)} training crops, {len(split.heldout)} held-out crops"
        )
        return split_dir

    def train(self, name, split_dir, run_dir, options):
        from colorization.backbones import WeightsUnavailable
        from colorization.checkpoint import LAST_NAME
        from colorization.config import TrainConfig
        from colorization.train import config_for_resume, train

        self.step(f"2/4 Training {name} ({options['steps']} steps)")
        done = run_dir / "done"
        if done.exists():
            self.stdout.write(f"  reusing {run_dir / LAST_NAME}")
            return run_dir
        backbone_option = BACKBONE_OPTIONS[name]
        while True:
            weights = self.backbone_weights
            if (run_dir / LAST_NAME).exists():
                self.stdout.write(f"  resuming the interrupted run in {run_dir}")
                config = config_for_resume(run_dir, max_steps=options["steps"])
                weights = config.model_opts.get(backbone_option, config.vgg_weights)
            else:
                extra = DEMO_TRAINING.get(name, {})
                if backbone_option == "vgg_weights":  # the perceptual loss's backbone: a training setting
                    backbone, backbone_opts = {"vgg_weights": weights}, {}
                else:  # the model's own backbone: a model option
                    backbone, backbone_opts = {}, {backbone_option: weights}
                config = TrainConfig(
                    model=name,
                    split=split_dir,
                    out=run_dir,
                    max_steps=options["steps"],
                    image_size=options["image_size"],
                    batch_size=8,
                    workers=0,
                    optimizer="adam",
                    lr=1e-3,
                    model_opts={"width": options["width"], **extra.get("model_opts", {}), **backbone_opts},
                    cache_features=extra.get("cache_features", False),
                    **backbone,
                )
            try:
                train(config)
                break
            except WeightsUnavailable as error:
                if weights == "none":
                    raise
                self.stdout.write(
                    self.style.WARNING(
                        f"  {error}\n  Pretrained weights are not available here, so the demo uses randomly "
                        "initialised backbones from now on: the demo's results say nothing about the paper's models."
                    )
                )
                # One failed download means no network: the next backbone would only wait for its own failure.
                self.backbone_weights = "none"
        done.write_text(f"{backbone_option}={weights}\n")
        return run_dir

    def build_study(self, split_dir, runs, options):
        self.step("3/4 Building the 'demo' study (stimuli normalized and audited)")
        if Study.objects.filter(slug="demo").exists():
            self.stdout.write("  reusing the existing 'demo' study")
            return
        call_command(
            "build_study",
            "demo",
            split=str(split_dir),
            run=[f"{name}={path}" for name, path in runs.items()],
            n_scenes=options["n_scenes"],
            title="Real or colorized? (demo)",
            trials=options["trials"],
            control_fraction=0.25,
            practice=2,
            catch_trials=1,
            # A poster demo: visitors like their score, and the study's data is a demonstration anyway.
            show_score=True,
            seed=0,
            port=options["port"],
            stdout=self.stdout,
        )

    def staff_login(self, workdir, reset=False):
        """Lines that tell the staff how to log in, creating the staff account only if no account has its name.

        `manage.py demo` never changes an account it did not create: an account that exists keeps its
        password and its flags, whoever made it. The account it created keeps its password from run to run,
        unless reset asks for a new one.
        """
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        wanted_password = os.environ.get("DEMO_ADMIN_PASSWORD")
        User = get_user_model()
        record_path = workdir / STAFF_LOGIN_FILE
        record = read_staff_logins(record_path)
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()

        if user is None:
            password = wanted_password or secrets.token_urlsafe(9)
            # Recorded before the account exists: a crash in between leaves a record without an account,
            # which the next run replaces, never an account whose password nobody knows.
            record[username] = password
            write_staff_logins(record_path, record)
            try:
                with transaction.atomic():
                    User._default_manager.create_superuser(**{User.USERNAME_FIELD: username, "password": password})
            except IntegrityError:
                # Somebody else created it meanwhile: it has their password, not the recorded one, so the
                # check below leaves it alone as theirs.
                user = User._default_manager.get(**{User.USERNAME_FIELD: username})
            else:
                return [
                    f"Staff login:  {username} / {password}  (account created by the demo; login kept in {record_path})"
                ]

        if not (user.is_active and user.is_staff):
            return [
                self.style.WARNING(
                    f"Staff login:  none. The existing account {username!r} is not an active staff account and the "
                    "demo does not promote accounts. Set DEMO_ADMIN_USER to a name no account has and the demo "
                    "creates a staff account with it."
                )
            ]

        password = record.get(username)
        # Checking the stored password, rather than trusting the record alone, tells the demo's account apart
        # from one recreated under the same name (a fresh database, createsuperuser) and notices a
        # changepassword; the hasher's function is used because User.check_password may re-save the hash.
        if password is None or not check_password(password, user.password):
            return [f"Staff login:  {username} with its own password (an existing account: the demo changed nothing)"]

        if reset:
            password = wanted_password or secrets.token_urlsafe(9)
            record[username] = password
            write_staff_logins(record_path, record)
            user.set_password(password)
            user.save(update_fields=["password"])
            return [f"Staff login:  {username} / {password}  (new password, --reset-password; kept in {record_path})"]
        lines = [f"Staff login:  {username} / {password}  (created by an earlier demo run; password unchanged)"]
        if wanted_password and wanted_password != password:
            lines.append(
                self.style.WARNING(
                    f"  DEMO_ADMIN_PASSWORD is ignored: the demo does not reset the password of {username!r}, "
                    f"which it created earlier. `python manage.py demo --reset-password` sets it."
                )
            )
        return lines


def read_staff_logins(path):
    """{username: password} of the accounts the demo created, as recorded in the workdir."""
    try:
        logins = json.loads(path.read_text())
    except (OSError, ValueError):
        # No record, or one that cannot be read, only means no account counts as the demo's: nothing is changed.
        return {}
    if not isinstance(logins, dict):
        return {}
    return {name: password for name, password in logins.items() if isinstance(password, str)}


def write_staff_logins(path, logins):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # Created 0600 from the start, so the passwords are never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a .tmp left by a killed run keeps its old mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        json.dump(logins, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
