"""Errors that are the user's to fix: a missing file, a malformed option, an unreadable image, a study design that
cannot work. The command-line tools and the Django management commands print these as one line saying what to do;
any other exception is a bug and keeps its traceback."""


class UserError(Exception):
    """Raised for input a user can correct; its message names the file or option and the problem."""


# ConfigError and ImageError are ValueErrors too: callers that guard a call with `except ValueError` (a bad value
# handed in) keep catching them.
class ConfigError(UserError, ValueError):
    """An inconsistent or malformed setting, option, split or settings file (checkpoint, state_dict)."""


class ImageError(UserError, ValueError):
    """A file that cannot be used as an image; the message starts with the file's path."""
