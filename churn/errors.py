"""The error raised for anything the user can fix: bad data, bad arguments, bad registry state."""


class UserError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback and exits with code 2."""
