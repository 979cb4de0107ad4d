"""Django's DatabaseCache with an incr() that several processes can run at once.

Django's incr() reads the value, adds and writes it back: two server processes counting the same join both read
5 and both write 6, and the join limit lets through as many joins as there are processes. Here the read and the
write run in one transaction that holds the row: SELECT ... FOR UPDATE where the database has it (PostgreSQL),
and SQLite's write lock, which the site's SQLite settings take at BEGIN (transaction_mode IMMEDIATE).
"""

from django.core.cache.backends import db
from django.db import connections, router, transaction


class DatabaseCache(db.DatabaseCache):
    def incr(self, key, delta=1, version=None):
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT cache_key FROM {connection.ops.quote_name(self._table)} WHERE cache_key = %s{lock}",
                [self.make_and_validate_key(key, version=version)],
            )
            return super().incr(key, delta, version)
