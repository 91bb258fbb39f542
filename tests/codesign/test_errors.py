"""InputError: the one invalid-input error names the field, the value and what is allowed, and is a ValueError."""

import pytest

from codesign.errors import InputError


def test_message_and_attributes():
    error = InputError("rows", 0, "an integer from 1 to 64")
    assert str(error) == "rows: 0 is not allowed; expected an integer from 1 to 64"
    assert (error.field, error.value, error.allowed) == ("rows", 0, "an integer from 1 to 64")


def test_values_are_shown_as_python_literals():
    assert str(InputError("--bits", "2,x", "integers")) == "--bits: '2,x' is not allowed; expected integers"
    assert str(InputError("shape", (3, 4), "M x K")).startswith("shape: (3, 4) is not allowed")


def test_it_is_a_value_error():
    with pytest.raises(ValueError, match="^k: -1 is not allowed"):
        raise InputError("k", -1, "a positive integer")
