import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
application = get_wsgi_application()

from evalsite.startup import check_deployment, import_views  # noqa: E402 (needs the settings loaded above)

check_deployment()
import_views()
