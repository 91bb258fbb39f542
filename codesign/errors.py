"""The one error type for invalid user input, so every front end reports it the same way."""


class InputError(ValueError):
    """Invalid user input: names the field, the value and what is allowed.

    The CLI turns it into a one-line message on stderr and exit code 2.
    """

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: {value!r} is not allowed; expected {allowed}")
