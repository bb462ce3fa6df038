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


class Interrupted(SunsetError):
    """The user stopped the command (SIGINT, SIGTERM); what it wrote is kept and valid."""

    exit_code = 130  # what shells report for SIGINT

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
