"""The one error type for bad user input (paths, names, configs).

Anything raised as ``InputError`` is the user's to fix: the CLI prints its message alone and exits
with code 2, before any compute starts. Messages name the field or file at fault.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input; ``where`` names the field path or file it concerns."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Ray pickles a trial's exception to the driver; the default rebuilds it from the one
        # formatted string, which this two-argument constructor cannot take.
        return type(self), (self.where, self.message)


class NonFiniteLoss(RuntimeError):
    """A trial's training loss became NaN or infinite: the trial fails with this reason, and its
    retries fail at once instead of repeating the same divergence."""


class UnreadableImage(RuntimeError):
    """An image file a trial reads cannot be decoded (truncated, empty, not an image); the message
    names the file. One argument, so Ray and torch's DataLoader workers can rebuild it."""
