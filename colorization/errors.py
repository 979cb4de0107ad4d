"""Errors that are the user's to fix: a missing file, a malformed option, an unreadable image, a study design that
cannot work. The command-line tools and the Django management commands print these as one line saying what to do;
any other exception is a bug and keeps its traceback."""


class UserError(Exception):
    """Raised for input a user can correct; its message names the file or option and the problem."""
