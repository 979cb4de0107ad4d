"""Serve the studies from this machine to phones on the local network, the way a poster session needs.

gunicorn with several worker processes (not Django's development server), DEBUG off, static files collected
and served by WhiteNoise, plain HTTP (evalsite.settings_lan), ALLOWED_HOSTS and CSRF origins set to this
machine's LAN address. It prints the participant URL with a QR code to scan, and the staff URL, then hands
the process over to gunicorn (Ctrl-C stops it).
"""

import io
import ipaddress
import os
import subprocess
import sys

import segno
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from turing.management.study_options import study_or_error
from turing.models import Study
from turing.network import DEFAULT_PORT, LOOPBACK_WARNING, is_loopback, lan_address, port_in_use, site_url

SETTINGS = "evalsite.settings_lan"
ALL_INTERFACES = "0.0.0.0"


def default_workers():
    return min(2 * (os.cpu_count() or 1) + 1, 8)


class Command(BaseCommand):
    help = (
        "Serve the studies to phones on this network with gunicorn (several workers, DEBUG off, static files "
        "by WhiteNoise, plain HTTP), printing the participant URL with a QR code and the staff URL."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=DEFAULT_PORT, help=f"Port to listen on (default {DEFAULT_PORT})."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help=f"gunicorn worker processes (default {default_workers()}: 2 per core + 1, at most 8).",
        )
        parser.add_argument(
            "--study",
            metavar="SLUG",
            help="The study whose join URL and QR code to print (default: the only open one, if there is one).",
        )
        parser.add_argument(
            "--host",
            help="The address phones use to reach this machine, for the printed URLs "
            "and the allowed hosts (default: its address on the network). It binds nothing: see --bind.",
        )
        parser.add_argument(
            "--bind",
            default=ALL_INTERFACES,
            metavar="ADDR",
            help=f"The local address to listen on (default {ALL_INTERFACES}: every interface, so that phones on "
            "the network reach it; 127.0.0.1 for this machine only, or behind a proxy on the same machine).",
        )

    def handle(self, *args, port, workers, study, host, bind, **options):
        if not 0 < port < 65536:
            raise CommandError(f"--port {port}: not a port number")
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        try:
            listen = ipaddress.ip_address(bind)
        except ValueError:
            raise CommandError(f"--bind {bind}: not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)") from None
        if port_in_use(port, str(listen)):
            raise CommandError(
                f"port {port} is in use (another serve or demo still running?): stop it, or pick "
                f"another port with --port (make demo PORT=...)"
            )
        call_command("migrate", interactive=False, verbosity=0)
        shown = self.study_to_show(study)
        address = host or lan_address()
        if address is None:
            self.stderr.write(self.style.ERROR(LOOPBACK_WARNING))
        hosts = list(dict.fromkeys(name for name in (address, "localhost", "127.0.0.1") if name))
        environment = os.environ | {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": ",".join(hosts),
            "CSRF_TRUSTED_ORIGINS": ",".join(f"http://{host}:{port}" for host in hosts),
        }
        # Under the LAN settings, whose cache (the join counts every worker shares) is a table in the database.
        for command in (["collectstatic", "--noinput"], ["createcachetable"]):
            done = subprocess.run(
                [sys.executable, "manage.py", *command, "-v", "0"],
                cwd=settings.BASE_DIR,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise CommandError(f"{command[0]} failed:\n{done.stderr.strip()}")
        base = site_url(address, port)
        bound = f"[{listen}]:{port}" if listen.version == 6 else f"{listen}:{port}"
        if shown is not None:
            join = f"{base}/s/{shown.slug}/"
            self.stdout.write(f"Participants of '{shown.title}': {join}")
            # Rendered first and written as one piece: OutputWrapper ends every write() with a newline, so
            # segno writing row by row into self.stdout put a blank line under each row and no phone could scan it.
            qr = io.StringIO()
            segno.make(join, error="m").terminal(out=qr, compact=True)
            self.stdout.write(qr.getvalue(), ending="")
        self.stdout.write(f"Staff: {base}/staff/   (health: {base}/healthz)")
        everywhere = " (every interface)" if listen.is_unspecified else ""
        self.stdout.write(f"Listening on {bound}{everywhere}; phones are told {base}")
        if listen.is_loopback and address not in (None, "localhost") and not is_loopback(address):
            warning = f"WARNING: --bind {listen} listens for this machine only: no phone can open {base}"
            self.stderr.write(self.style.WARNING(warning))
        self.stdout.flush()
        # --preload: workers fork from a master that has imported Django, numpy and scipy already, so a worker
        # respawned after a crash answers at once instead of spending a second of CPU on imports. No access
        # log: ten lines a second per phone would scroll the QR code away (errors are still printed).
        gunicorn = [
            sys.executable,
            "-m",
            "gunicorn",
            "evalsite.wsgi",
            "--workers",
            str(workers),
            "--preload",
            "--bind",
            bound,
            "--graceful-timeout",
            "10",
        ]
        os.chdir(settings.BASE_DIR)
        os.execve(sys.executable, gunicorn, environment)

    def study_to_show(self, slug):
        if slug is not None:
            return study_or_error(slug)
        open_studies = list(Study.objects.filter(status=Study.Status.OPEN)[:2])
        return open_studies[0] if len(open_studies) == 1 else None
