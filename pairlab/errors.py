"""Errors a user can cause. Each carries one clear sentence for the UI and the CLI."""


class UserError(Exception):
    """Something the user can fix (bad file, bad parameter, missing weights).

    The message is one sentence, shown as-is in the UI and the CLI, never with a traceback.
    """


class BadImage(UserError):
    """An image file that cannot be used; ``reason`` is a short category for skip counts."""

    def __init__(self, path, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}{' (' + detail + ')' if detail else ''}.")
