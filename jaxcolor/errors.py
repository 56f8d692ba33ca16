"""The exceptions that end a script with one line instead of a traceback: the user asked for
something impossible, or stopped the run."""


class UserError(Exception):
    """A problem with the user's input (flag, file, environment).

    Experiment scripts print its message as one line and exit non-zero, without a traceback.
    The message should name the flag or file at fault and say how to fix it.
    """


class RunInterruptedError(Exception):
    """The user stopped training (Ctrl-C, or SIGTERM from a scheduler); the message says in which
    epoch and what is kept for the same command to resume."""
