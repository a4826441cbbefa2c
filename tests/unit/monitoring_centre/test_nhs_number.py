"""NHS number format and check digit.

The reference here is the rule restated another way: weighting all ten digits 10 down
to 1, a valid number's weighted sum is a multiple of 11. (check = 11 - S mod 11, so
S + check is a multiple of 11; check 11 becomes 0, which keeps that true; check 10 is no
digit, so no number with those first nine can pass.)
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring_centre.nhs_number import NHS_NUMBER_SYSTEM, InvalidNhsNumber, check_digit, is_valid, normalise


def valid_by_full_sum(number: str) -> bool:
    return len(number) == 10 and sum((10 - i) * int(d) for i, d in enumerate(number)) % 11 == 0


def test_the_identifier_system_is_the_nhs_one() -> None:
    assert NHS_NUMBER_SYSTEM == "https://fhir.nhs.uk/Id/nhs-number"


@pytest.mark.parametrize(
    ("number", "weighted_sum"),
    [
        # Written out by hand: digit × weight for weights 10..1, check digit last.
        ("9434765919", 9 * 10 + 4 * 9 + 3 * 8 + 4 * 7 + 7 * 6 + 6 * 5 + 5 * 4 + 9 * 3 + 1 * 2 + 9 * 1),
        ("4010232137", 4 * 10 + 0 * 9 + 1 * 8 + 0 * 7 + 2 * 6 + 3 * 5 + 2 * 4 + 1 * 3 + 3 * 2 + 7 * 1),
        ("9990000018", 9 * 10 + 9 * 9 + 9 * 8 + 0 + 0 + 0 + 0 + 0 + 1 * 2 + 8 * 1),
        # First nine sum to 44, a multiple of 11: the check digit 11 becomes 0.
        ("1000002470", 1 * 10 + 0 + 0 + 0 + 0 + 0 + 2 * 4 + 4 * 3 + 7 * 2 + 0 * 1),
    ],
)
def test_known_valid_numbers(number: str, weighted_sum: int) -> None:
    assert weighted_sum % 11 == 0
    assert valid_by_full_sum(number)
    assert check_digit(number[:9]) == int(number[9])
    assert normalise(number) == number
    assert is_valid(number)


def test_check_digit_eleven_becomes_zero() -> None:
    assert (1 * 10 + 2 * 4 + 4 * 3 + 7 * 2) % 11 == 0
    assert check_digit("100000247") == 0


@pytest.mark.parametrize("written", ["943 476 5919", "943-476-5919", "9434765919", "  943 476 5919\n"])
def test_written_forms_normalise_to_ten_digits(written: str) -> None:
    assert normalise(written) == "9434765919"


def test_a_wrong_check_digit_names_expected_and_given() -> None:
    with pytest.raises(InvalidNhsNumber) as refused:
        normalise("943 476 5918")
    assert str(refused.value) == "check digit mismatch: expected 9 from the first nine digits, given 8"
    assert not is_valid("9434765918")


def test_remainder_ten_means_no_valid_number() -> None:
    # 1×10 + 2×9 + 3×8 + 4×7 + 5×6 + 6×5 + 7×4 + 8×3 + 9×2 = 210 = 19×11 + 1: check 11 - 1 = 10.
    assert 1 * 10 + 2 * 9 + 3 * 8 + 4 * 7 + 5 * 6 + 6 * 5 + 7 * 4 + 8 * 3 + 9 * 2 == 210
    assert check_digit("123456789") is None
    for last in "0123456789":
        with pytest.raises(InvalidNhsNumber, match="check digit of the first nine digits is 10"):
            normalise("123456789" + last)


@pytest.mark.parametrize(("text", "digits"), [("943476591", 9), ("94347659190", 11), ("", 0), ("943 476 591", 9)])
def test_wrong_length_says_how_many_digits(text: str, digits: int) -> None:
    with pytest.raises(InvalidNhsNumber, match=rf"10 digits; this has {digits}$"):
        normalise(text)


@pytest.mark.parametrize("text", ["943476591X", "NHS 9434765919", "943.476.5919", "９４３４７６５９１９"])
def test_other_characters_are_refused(text: str) -> None:
    with pytest.raises(InvalidNhsNumber, match="other characters"):
        normalise(text)
    assert not is_valid(text)


@pytest.mark.parametrize("text", ["943 476-5919", "9434 765 919", "943  476  5919", "943 -476 -5919", "943-4765919"])
def test_badly_grouped_digits_are_refused(text: str) -> None:
    with pytest.raises(InvalidNhsNumber, match="grouped 3 3 4"):
        normalise(text)


def test_messages_do_not_repeat_the_number() -> None:
    for text in ("9434765918", "943476591", "943476591X", "1234567890"):
        with pytest.raises(InvalidNhsNumber) as refused:
            normalise(text)
        assert "9434765" not in str(refused.value)
        assert "1234567" not in str(refused.value)


@pytest.mark.parametrize("first_nine", ["94347659", "9434765919", "94347659a", "９４３４７６５９１"])
def test_check_digit_needs_nine_ascii_digits(first_nine: str) -> None:
    with pytest.raises(ValueError, match="exactly 9"):
        check_digit(first_nine)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_only_the_check_digit_completes_a_prefix(prefix: str) -> None:
    check = check_digit(prefix)
    assert check == next((int(d) for d in "0123456789" if valid_by_full_sum(prefix + d)), None)
    for last in range(10):
        number = f"{prefix}{last}"
        if last == check:
            assert normalise(number) == number
            assert normalise(f"{number[:3]} {number[3:6]} {number[6:]}") == number
            assert normalise(f"{number[:3]}-{number[3:6]}-{number[6:]}") == number
        else:
            with pytest.raises(InvalidNhsNumber):
                normalise(number)
            assert not is_valid(number)
