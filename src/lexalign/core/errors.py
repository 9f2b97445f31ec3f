"""The one exception type for errors a user can cause (bad files, bad config, missing models)."""


class LexalignError(Exception):
    """A user-facing error: its message is one line naming the file or field and the problem.

    Raise it for anything the user can fix; a traceback is reserved for bugs.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
