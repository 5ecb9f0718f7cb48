"""The base of every error meant for a person rather than a traceback.

The CLI prints these as one clear line and the app shows them in the page; anything else is a
bug and keeps its traceback.
"""


class RecsysError(Exception):
    """Bad input, missing data or a missing file, explained with what to do about it."""
