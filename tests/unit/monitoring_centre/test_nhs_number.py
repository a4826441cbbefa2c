"""NHS number format and check digit.

The reference here is the rule restated another way: weighting all ten digits 10 down
to 1, a valid number's weighted sum is a multiple of 11. (check = 11 - S mod 11, so
S + check is a multiple of 11; check 11 becomes 0, which keeps that true; check 10 is no
digit, so no number with those first nine can pass.)

Beyond the check digit: placeholders (ten identical digits, all of which pass it) and
numbers outside the ranges issued as NHS numbers are refused; the synthetic test range
(9...) only with `allow_test_numbers`, as the demo and the tests enrol people.
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
    ("number", "weighted_sum", "test_range"),
    [
        # Written out by hand: digit × weight for weights 10..1, check digit last.
        ("9434765919", 9 * 10 + 4 * 9 + 3 * 8 + 4 * 7 + 7 * 6 + 6 * 5 + 5 * 4 + 9 * 3 + 1 * 2 + 9 * 1, True),
        ("4010232137", 4 * 10 + 0 * 9 + 1 * 8 + 0 * 7 + 2 * 6 + 3 * 5 + 2 * 4 + 1 * 3 + 3 * 2 + 7 * 1, False),
        ("9990000018", 9 * 10 + 9 * 9 + 9 * 8 + 0 + 0 + 0 + 0 + 0 + 1 * 2 + 8 * 1, True),
        ("6000000014", 6 * 10 + 0 + 0 + 0 + 0 + 0 + 0 + 0 + 1 * 2 + 4 * 1, False),
    ],
)
def test_known_valid_numbers(number: str, weighted_sum: int, test_range: bool) -> None:
    assert weighted_sum % 11 == 0
    assert valid_by_full_sum(number)
    assert check_digit(number[:9]) == int(number[9])
    assert normalise(number, allow_test_numbers=True) == number
    assert is_valid(number, allow_test_numbers=True)
    assert is_valid(number) is not test_range


def test_check_digit_of_a_prefix_summing_to_a_multiple_of_eleven() -> None:
    # First nine sum to 44, a multiple of 11: the check digit 11 becomes 0. (A Scottish CHI
    # range number, so not an NHS number: the check digit is all this test is about.)
    assert 1 * 10 + 2 * 4 + 4 * 3 + 7 * 2 == 44
    assert check_digit("100000247") == 0 and valid_by_full_sum("1000002470")


@pytest.mark.parametrize("digit", "0123456789")
def test_ten_identical_digits_pass_the_check_digit_but_are_refused(digit: str) -> None:
    number = digit * 10
    assert valid_by_full_sum(number)  # d × (10 + 9 + ... + 1) = 55 d, a multiple of 11 for every d
    for allow in (False, True):
        with pytest.raises(InvalidNhsNumber, match="all ten digits are the same"):
            normalise(number, allow_test_numbers=allow)
    assert not is_valid(f"{number[:3]} {number[3:6]} {number[6:]}", allow_test_numbers=True)


def test_the_synthetic_test_range_needs_the_switch() -> None:
    with pytest.raises(InvalidNhsNumber, match="synthetic range kept for test patients") as refused:
        normalise("943 476 5919")
    assert "allow_test_nhs_numbers" in str(refused.value) and "9434765" not in str(refused.value)
    assert normalise("943 476 5919", allow_test_numbers=True) == "9434765919"


@pytest.mark.parametrize(("number", "region"), [
    ("0101901232", "Scotland CHI"),  # born 01/01/90: a real CHI number's form
    ("3200000015", "Northern Ireland"),
    ("5000000005", "Reserved"),
    ("8000000008", "Republic of Ireland"),
    ("8600000009", "Unallocated"),
    ("3113000009", "Unallocated"),
    ("0000000019", "Unallocated"),
])
def test_numbers_outside_the_issued_ranges_are_refused_naming_the_range(number: str, region: str) -> None:
    assert valid_by_full_sum(number)
    for allow in (False, True):
        with pytest.raises(InvalidNhsNumber, match="not in a range issued as NHS numbers") as refused:
            normalise(number, allow_test_numbers=allow)
        assert region in str(refused.value) and number not in str(refused.value)


@pytest.mark.parametrize(("number", "issued"), [
    ("3999999993", False), ("4000000004", True), ("4999999994", True), ("5000000005", False),
    ("5999999995", False), ("6000000006", True), ("7999999997", True), ("8000000008", False),
])
def test_the_issued_ranges_are_4_and_6_to_7(number: str, issued: bool) -> None:
    assert valid_by_full_sum(number)
    assert is_valid(number) is issued


@pytest.mark.parametrize("written", ["401 023 2137", "401-023-2137", "4010232137", "  401 023 2137\n"])
def test_written_forms_normalise_to_ten_digits(written: str) -> None:
    assert normalise(written) == "4010232137"


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


@given(st.sampled_from("467"), st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_only_the_check_digit_completes_a_prefix(first: str, rest: str) -> None:
    prefix = first + rest  # in the ranges issued as NHS numbers
    check = check_digit(prefix)
    assert check == next((int(d) for d in "0123456789" if valid_by_full_sum(prefix + d)), None)
    for last in range(10):
        number = f"{prefix}{last}"
        if last == check and len(set(number)) > 1:
            assert normalise(number) == number
            assert normalise(f"{number[:3]} {number[3:6]} {number[6:]}") == number
            assert normalise(f"{number[:3]}-{number[3:6]}-{number[6:]}") == number
        else:
            with pytest.raises(InvalidNhsNumber):
                normalise(number)
            assert not is_valid(number)
