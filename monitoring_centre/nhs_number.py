"""NHS numbers: form, check digit, and whether the number can belong to a person.

An NHS number is 10 digits, often written 3-3-4 ("943 476 5919"). Digits 1-9 are
weighted 10 down to 2 and summed; the check digit is 11 minus the sum modulo 11, where 11
becomes 0 and 10 means no valid number has that first nine.

The check digit and the number ranges come from the `nhs-number` package (its `constants`
module collates the ranges). This module is the one place the centre asks, and adds what
a telecare record needs on top:

* The form is strict: ASCII digits, plain or grouped 3-3-4 with one space or one hyphen,
  so each refusal can say what is wrong with the form.
* The check digit alone is not enough. Every number of ten identical digits passes it
  (`0000000000`, `9999999999`, ...): those are placeholders typed into a form, refused.
* Only numbers from the ranges issued as NHS numbers (England, Wales and the Isle of Man:
  400 000 0000-499 999 9999 and 600 000 0000-799 999 9999) are accepted. Scotland's CHI
  and Northern Ireland's H&C numbers, the Republic of Ireland's IHI range, and the
  reserved and unallocated ranges are refused, naming the range.
* The synthetic range 900 000 0000-999 999 9999 is never issued to a person; NHS test
  environments use it (the familiar "943 476 5919"). It is accepted only with
  `allow_test_numbers=True`: the demo and the tests pass it (the centre's
  `allow_test_nhs_numbers` setting, off by default), production never does.

Error messages never repeat the number itself: it identifies a person, and messages end
up in logs.
"""

import re

from nhs_number.constants import REGION_ENGLAND_WALES_IOM, REGION_SYNTHETIC
from nhs_number.details import NhsNumber
from nhs_number.validate import calculate_checksum

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
"""The FHIR identifier system for an NHS number."""

_WRITTEN = re.compile(r"([0-9]{3})([ -]?)([0-9]{3})\2([0-9]{4})")
"""10 digits, or 3-3-4 groups separated by one space or one hyphen (the same one twice)."""
_FIRST_NINE = re.compile(r"[0-9]{9}")
_NO_VALID_NUMBER = 10
"""The check digit computed as 10: no valid number has those first nine digits."""


class InvalidNhsNumber(ValueError):
    """The text is not a valid NHS number; the message says why."""


def check_digit(first_nine: str) -> int | None:
    """The check digit for these first nine digits, or None when no valid number has them.

    Raises ValueError unless `first_nine` is exactly nine ASCII digits."""
    if not _FIRST_NINE.fullmatch(first_nine):
        raise ValueError("the first nine digits of an NHS number must be exactly 9 ASCII digits")
    check = calculate_checksum(first_nine)
    return None if check is None or check == _NO_VALID_NUMBER else check


def spaced(number: str) -> str:
    """Ten digits as NHS numbers are always shown, 3-3-4: "401 023 2137" (other text unchanged)."""
    digits = number.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return number
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def normalise(text: str, *, allow_test_numbers: bool = False) -> str:
    """The 10 digits of an NHS number written "4010232137", "401 023 2137" or "401-023-2137".

    Raises InvalidNhsNumber (a ValueError) for a malformed number, a wrong check digit, ten
    identical digits, or a number outside the ranges issued as NHS numbers; numbers from the
    synthetic test range pass only with `allow_test_numbers`."""
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
    if len(set(number)) == 1:
        raise InvalidNhsNumber("all ten digits are the same: a placeholder, never issued to a person")
    details = NhsNumber(number)  # type: ignore[no-untyped-call]  # the package's documented details API
    if details.region is REGION_SYNTHETIC:
        if not allow_test_numbers:
            raise InvalidNhsNumber("the number is in the synthetic range kept for test patients (900 000 0000 and "
                                   "above), never issued to a person; only a centre with allow_test_nhs_numbers "
                                   "(the demo, tests) accepts it")
    elif details.region is not REGION_ENGLAND_WALES_IOM:
        where = details.region.label if details.region is not None else "no known range"
        raise InvalidNhsNumber(f"the number is not in a range issued as NHS numbers (England, Wales and the Isle of "
                               f"Man): it is in {where}")
    if not details.valid:  # the library's own verdict, should it ever know more than the above
        raise InvalidNhsNumber("the number fails the nhs-number package's check")
    return number


def _what_is_wrong_with_the_form(text: str) -> str:
    if any(char not in "0123456789 -" for char in text):
        return "an NHS number has only digits, spaces and hyphens; this has other characters"
    digits = sum(char.isdigit() for char in text)
    if digits != 10:
        return f"an NHS number is 10 digits; this has {digits}"
    return "an NHS number is written as 10 digits, or grouped 3 3 4 with single spaces or single hyphens"


def is_valid(text: str, *, allow_test_numbers: bool = False) -> bool:
    """True when `normalise` accepts `text` (with the same `allow_test_numbers`)."""
    try:
        normalise(text, allow_test_numbers=allow_test_numbers)
    except InvalidNhsNumber:
        return False
    return True
