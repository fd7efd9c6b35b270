"""The one exception type a user sees: a message that names the problem and the fix."""


class HivaError(Exception):
    """An error caused by the user's input or environment.

    The CLI prints ``str(err)`` as one line and exits with code 1, no traceback. The message must
    say what is wrong and what to do about it.
    """


def some(keys, n: int = 4) -> str:
    """The first ``n`` of ``keys``, then how many more: for one-line messages about key lists."""
    keys = list(keys)
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")
