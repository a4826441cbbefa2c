"""NHS numbers: format and check digit (modulus 11).

An NHS number is 10 digits, often written 3-3-4 ("943 476 5919"). Digits 1-9 are
weighted 10 down to 2 and summed; the check digit is 11 minus the sum modulo 11, where 11
becomes 0 and 10 means no valid number has that first nine.

Error messages never repeat the number itself: it identifies a person, and messages end
up in logs.
"""

import re

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
"""The FHIR identifier system for an NHS number."""

_WRITTEN = re.compile(r"([0-9]{3})([ -]?)([0-9]{3})\2([0-9]{4})")
"""10 digits, or 3-3-4 groups separated by one space or one hyphen (the same one twice)."""
_FIRST_NINE = re.compile(r"[0-9]{9}")


class InvalidNhsNumber(ValueError):
    """The text is not a valid NHS number; the message says why."""


def check_digit(first_nine: str) -> int | None:
    """The check digit for these first nine digits, or None when no valid number has them."""
    if not _FIRST_NINE.fullmatch(first_nine):
        raise ValueError("the first nine digits of an NHS number must be exactly 9 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def normalise(text: str) -> str:
    """The 10 digits of an NHS number written "9434765919", "943 476 5919" or "943-476-5919"."""
    written = _WRITTEN.fullmatch(text.strip())
    if written is None:
        raise InvalidNhsNumber(_what_is_wrong_with_the_form(text.strip()))
    number = written.group(1) + written.group(3) + written.group(4)
    expected = check_digit(number[:9])
    if expected is None:
        raise InvalidNhsNumber("the check digit of the first nine digits is 10, so the number cannot be valid")
    given = int(number[9])
    if given != expected:
        raise InvalidNhsNumber(f"check digit mismatch: expected {expected} from the first nine digits, given {given}")
    return number


def _what_is_wrong_with_the_form(text: str) -> str:
    if any(char not in "0123456789 -" for char in text):
        return "an NHS number has only digits, spaces and hyphens; this has other characters"
    digits = sum(char.isdigit() for char in text)
    if digits != 10:
        return f"an NHS number is 10 digits; this has {digits}"
    return "an NHS number is written as 10 digits, or grouped 3 3 4 with single spaces or single hyphens"


def is_valid(text: str) -> bool:
    """True when `text` is a well-formed NHS number with the right check digit."""
    try:
        normalise(text)
    except InvalidNhsNumber:
        return False
    return True
