"""The one error type for invalid user input, so every front end reports it the same way."""

from __future__ import annotations


class InputError(ValueError):
    """Invalid user input: names the field, the value and what is allowed.

    The CLI turns it into a one-line message on stderr and exit code 2.
    """

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: {value!r} is not allowed; expected {allowed}")

    def within(self, where: str) -> InputError:
        """The same error with its field placed in ``where`` (a file, a list index, a layer): ``where field``."""
        return InputError(f"{where} {self.field}", self.value, self.allowed)
