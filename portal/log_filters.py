"""Log filters that keep second-factor secrets out of the logs."""

import logging

# django-otp's tables and Keyturn's seed table: their rows hold TOTP seeds (encrypted, but a
# log is no place for them either) and backup-code digests.
_SECOND_FACTOR_TABLES = ("otp_totp_totpdevice", "otp_static_statictoken", "credentials_totpseed")


class HideSecondFactorQueries(logging.Filter):
    """Blank the SQL of a statement on django-otp's tables in ``django.db.backends``' log.

    With DEBUG on, Django logs every statement with its values filled in; an enrolment's
    INSERT would put the TOTP seed in the log. The record stays (with its timing), its text
    and parameters go.
    """

    def filter(self, record):
        sql = str(getattr(record, "sql", ""))
        if any(table in sql for table in _SECOND_FACTOR_TABLES):
            hidden = "[a second-factor statement; its SQL is not logged]"
            record.sql, record.params = hidden, None
            if isinstance(record.args, tuple) and len(record.args) == 4:
                record.args = (record.args[0], hidden, "[hidden]", record.args[3])
            else:
                record.msg, record.args = hidden, ()
        return True
