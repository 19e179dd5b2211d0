"""The one exception type for problems a user can fix: bad input, missing files, wrong flags."""


class TextuneError(Exception):
    """A user-fixable problem. The CLI prints its message as one line and exits with status 2.

    The message names the problem and the fix (the file, the column, the flag).
    """
