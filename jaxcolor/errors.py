"""The one exception type that means "the user asked for something impossible"."""


class UserError(Exception):
    """A problem with the user's input (flag, file, environment).

    Experiment scripts print its message as one line and exit non-zero, without a traceback.
    The message should name the flag or file at fault and say how to fix it.
    """
