"""Serve the studies from this machine to phones on the local network, the way a poster session needs.

gunicorn with several worker processes (not Django's development server), DEBUG off, static files collected
and served by WhiteNoise, plain HTTP (evalsite.settings_lan), ALLOWED_HOSTS and CSRF origins set to this
machine's LAN address. It prints the participant URL with a QR code to scan, and the staff URL, then hands
the process over to gunicorn (Ctrl-C stops it).
"""

import os
import secrets
import socket
import subprocess
import sys

import segno
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from turing.models import Study

SETTINGS = "evalsite.settings_lan"
# Sessions must outlive a restart and be shared by every worker: one key, kept beside the database.
SECRET_KEY_FILE = settings.BASE_DIR / ".serve-secret-key"
# A documentation address (RFC 5737): connecting a UDP socket to it sends nothing, it only picks the route.
ROUTE_PROBE = ("192.0.2.1", 9)


def lan_address():
    """This machine's address on its local network, or None when it has no route off the machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(ROUTE_PROBE)
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def secret_key():
    """SECRET_KEY from the environment, or the one kept in SECRET_KEY_FILE (made on first use, owner-only)."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if not SECRET_KEY_FILE.exists():
        descriptor = os.open(SECRET_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50))
    return SECRET_KEY_FILE.read_text().strip()


def default_workers():
    return min(2 * (os.cpu_count() or 1) + 1, 8)


class Command(BaseCommand):
    help = ("Serve the studies to phones on this network with gunicorn (several workers, DEBUG off, static files "
            "by WhiteNoise, plain HTTP), printing the participant URL with a QR code and the staff URL.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument("--workers", type=int, default=default_workers(),
                            help=f"gunicorn worker processes (default {default_workers()}: 2 per core + 1, at most 8).")
        parser.add_argument("--study", metavar="SLUG", help="The study whose join URL and QR code to print "
                                                            "(default: the only open one, if there is one).")

    def handle(self, *args, port, workers, study, **options):
        if not 0 < port < 65536:
            raise CommandError(f"--port {port}: not a port number")
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        call_command("migrate", interactive=False, verbosity=0)
        shown = self.study_to_show(study)
        address = lan_address()
        if address is None:
            self.stderr.write("This machine has no network route: only a browser on it can open the study. "
                              "Join the Wi-Fi the phones use, then start serve again.")
        hosts = [host for host in (address, "localhost", "127.0.0.1") if host]
        environment = os.environ | {
            "DJANGO_SETTINGS_MODULE": SETTINGS, "SECRET_KEY": secret_key(), "ALLOWED_HOSTS": ",".join(hosts),
            "CSRF_TRUSTED_ORIGINS": ",".join(f"http://{host}:{port}" for host in hosts),
        }
        collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                                   cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, check=False)
        if collected.returncode:
            raise CommandError(f"collectstatic failed:\n{collected.stderr.strip()}")
        base = f"http://{hosts[0]}:{port}"
        if shown is not None:
            join = f"{base}/s/{shown.slug}/"
            self.stdout.write(f"Participants of '{shown.title}': {join}")
            segno.make(join, error="m").terminal(out=self.stdout, compact=True)
        self.stdout.write(f"Staff: {base}/staff/   (health: {base}/healthz)")
        self.stdout.flush()
        # --preload: workers fork from a master that has imported Django, numpy and scipy already, so a worker
        # respawned after a crash answers at once instead of spending a second of CPU on imports. No access
        # log: ten lines a second per phone would scroll the QR code away (errors are still printed).
        gunicorn = [sys.executable, "-m", "gunicorn", "evalsite.wsgi", "--workers", str(workers), "--preload",
                    "--bind", f"0.0.0.0:{port}", "--graceful-timeout", "10"]
        os.chdir(settings.BASE_DIR)
        os.execve(sys.executable, gunicorn, environment)

    def study_to_show(self, slug):
        if slug is not None:
            study = Study.objects.filter(slug=slug).first()
            if study is None:
                raise CommandError(f"No study with slug '{slug}'.")
            return study
        open_studies = list(Study.objects.filter(status=Study.Status.OPEN)[:2])
        return open_studies[0] if len(open_studies) == 1 else None
