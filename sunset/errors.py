"""One error type for everything a user can get wrong.

Every stage raises SunsetError for bad input; the CLI turns it into a single
line on stderr and a non-zero exit, so users never see a traceback for a
mistake that is theirs to fix.
"""


class SunsetError(Exception):
    """A problem with the user's input or environment, reported in one line."""

    exit_code = 2


class NotBuiltYet(SunsetError):
    """A subcommand whose issue has not landed yet."""

    exit_code = 3
