"""How many examples a Hypothesis property test runs. The profiles are chosen in
tests/conftest.py: Hypothesis's own `ci` runs every property test at full strength; `dev`
(the default off CI) runs a share of that, so that `pytest -m "not integration"` stays
quick on a small machine.

A test that needs more (or fewer) examples than the profile's default says how many it
runs at full strength: `@settings(max_examples=property_examples(300))`."""

from hypothesis import settings


def property_examples(at_full_strength: int) -> int:
    """`at_full_strength` under the `ci` profile; under a lighter one, the same share of it."""
    share = settings().max_examples / settings.get_profile("ci").max_examples  # settings(): the loaded profile
    return max(10, round(at_full_strength * share))
