"""The pendant's fall detector (firmware_stubs/fall_detector.py) on synthetic traces at 20-200 Hz,
wired into the pendant's cancel window, and (when the shared data is there) on SisFall."""

import ast
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from firmware_stubs import fall_detector, pendant
from firmware_stubs.bthome import Transmitter
from firmware_stubs.fall_detector import FallDecision, FallDetector
from tests.support import fall_traces
from tests.support.fall_traces import Trace
from tests.unit.firmware_stubs.test_firmware_bthome import decode

RATES = (20.0, 50.0, 100.0, 200.0)


def decisions(trace: Trace, *, finish: bool = True) -> list[FallDecision]:
    detector = FallDetector(trace.rate_hz)
    found = [d for t, (x, y, z) in zip(trace.t, trace.a, strict=True) if (d := detector.update(t, x, y, z))]
    if finish and (last := detector.finish()) is not None:
        found.append(last)
    return found


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_fall_is_detected_at_every_rate_and_orientation(rate: float, seed: int) -> None:
    trace = fall_traces.fall(rate, seed=seed)
    found = decisions(trace)
    assert len(found) == 1
    assert trace.impact_t is not None
    assert abs(found[0].t - trace.impact_t) <= 1.5 / rate + 0.01
    assert found[0].angle_deg == pytest.approx(90, abs=10)
    assert found[0].still and found[0].free_fall
    assert found[0].decided_at > found[0].t


@pytest.mark.parametrize("rate", RATES)
def test_a_fall_without_free_fall_is_still_a_fall(rate: float) -> None:
    found = decisions(fall_traces.fall(rate, free_fall=False, seed=4))
    assert len(found) == 1
    assert not found[0].free_fall


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("activity", [fall_traces.sit_down_hard, fall_traces.jump, fall_traces.lie_down_on_bed])
def test_fall_like_activities_are_not_falls(rate: float, activity: object) -> None:
    assert callable(activity)
    assert decisions(activity(rate, seed=5)) == []


@pytest.mark.parametrize("rate", RATES)
def test_getting_up_or_moving_about_after_an_impact_is_not_a_fall(rate: float) -> None:
    assert decisions(fall_traces.fall(rate, gets_up=True, seed=6)) == []
    assert decisions(fall_traces.fall(rate, moves_g=0.5, seed=6)) == []
    # ...while a little movement on the floor (breathing, shifting) still counts as lying still.
    assert len(decisions(fall_traces.fall(rate, moves_g=0.03, seed=6))) == 1


@pytest.mark.parametrize("rate", RATES)
def test_a_soft_impact_below_the_threshold_is_not_an_impact(rate: float) -> None:
    assert decisions(fall_traces.fall(rate, peak_g=1.6, seed=7)) == []


def test_end_of_input_during_confirmation_is_decided_from_what_there_is() -> None:
    rate = 50.0
    whole = fall_traces.fall(rate, seed=8)
    assert whole.impact_t is not None

    impact = whole.impact_t

    def cut(after_impact_s: float) -> Trace:
        n = sum(1 for t in whole.t if t <= impact + after_impact_s)
        return Trace(rate, whole.t[:n], whole.a[:n], whole.impact_t)

    # Nothing is decided inside `update` before the posture window has passed...
    assert decisions(cut(1.8), finish=False) == []
    # ...but `finish` judges on the 0.8 s of posture window there is, and on the settling samples with less.
    for after in (1.8, 1.2, 0.4):
        found = decisions(cut(after))
        assert len(found) == 1, after
        assert found[0].angle_deg > fall_detector.POSTURE_CHANGE_DEG
    # An input that ends on the impact itself cannot be shown harmless: reported ("if in doubt, go out").
    found = decisions(cut(0.0))
    assert len(found) == 1 and math.isnan(found[0].angle_deg)
    # A sit-down cut short is judged on what there is, and is still not a fall.
    sit = fall_traces.sit_down_hard(rate, seed=8)
    n = sum(1 for t in sit.t if t <= 7.3)
    assert decisions(Trace(rate, sit.t[:n], sit.a[:n], None)) == []


def test_a_clip_that_ends_on_an_impact_is_undecided_not_a_fall() -> None:
    """An evaluation clip cut from a longer stream (`finish(clip=True)`): an impact it ends on cannot be judged
    and is counted, not reported; a replay of a pendant's input reports it ("if in doubt, go out")."""
    whole = fall_traces.jump(50.0, seed=16)
    n = sum(1 for t in whole.t if t <= 6.0 + 0.3)  # 0.3 s after the landing: still settling
    cut = Trace(50.0, whole.t[:n], whole.a[:n], None)
    detector = FallDetector(50)
    assert [d for t, (x, y, z) in zip(cut.t, cut.a, strict=True) if (d := detector.update(t, x, y, z))] == []
    assert detector.finish(clip=True) is None
    assert detector.undecided == 1
    # A fall whose clip holds 0.6 s of the first posture window is judged as any input is: a fall.
    fall = fall_traces.fall(50.0, seed=16)
    assert fall.impact_t is not None
    n = sum(1 for t in fall.t if t <= fall.impact_t + fall_detector.SETTLE_S + 0.6)
    detector = FallDetector(50)
    assert [d for t, (x, y, z) in zip(fall.t[:n], fall.a[:n], strict=True) if (d := detector.update(t, x, y, z))] == []
    decision = detector.finish(clip=True)
    assert decision is not None and decision.angle_deg > fall_detector.POSTURE_CHANGE_DEG
    assert detector.undecided == 0


def test_samples_out_of_order_are_ignored_and_counted() -> None:
    detector = FallDetector(50)
    assert detector.update(1.0, 0, 0, 1) is None
    assert detector.update(1.0, 0, 0, 5) is None
    assert detector.update(0.5, 0, 0, 5) is None
    assert detector.ignored_samples == 2
    assert detector.episodes == 0


def test_a_gap_in_the_input_resets_the_history() -> None:
    trace = fall_traces.fall(50.0, seed=9)
    shifted = [t + (100.0 if t >= 5.8 else 0.0) for t in trace.t]  # 100 s silence 0.2 s before the impact
    detector = FallDetector(50)
    found = [d for t, (x, y, z) in zip(shifted, trace.a, strict=True) if (d := detector.update(t, x, y, z))]
    # After the gap there is too little upright history for a reference: unconfirmable, counted.
    assert found == []
    assert detector.finish() is None
    assert detector.unconfirmable == 1


@pytest.mark.parametrize("rate", [10.0, 250.0, 0.0])
def test_rates_outside_20_to_200_hz_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        FallDetector(rate)


def test_the_detector_uses_only_what_micropython_has() -> None:
    tree = ast.parse(Path(fall_detector.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.decorator_list]


def test_the_pendant_raises_the_fall_alarm_after_its_cancel_window() -> None:
    trace = fall_traces.fall(50.0, seed=10, duration_s=35.0)
    detector = FallDetector(50)
    p = pendant.Pendant(tx=Transmitter(mac=bytes(6)), battery_pct=90)
    frames: list[tuple[float, bytes]] = []
    confirmed: list[float] = []
    for t, (x, y, z) in zip(trace.t, trace.a, strict=True):
        p, frame, decision = pendant.on_accelerometer(p, detector, t, x, y, z)
        if decision is not None:
            confirmed.append(t)
        if frame is not None:
            frames.append((t, frame))
    assert len(confirmed) == 1
    assert [t for t, _ in frames] == [pytest.approx(confirmed[0] + pendant.DEFAULT_FALL_CANCEL_WINDOW_S, abs=0.03)]
    assert decode(frames[0][1])["events"] == {"button_2": "press"}


def test_a_fall_cancelled_in_its_window_sends_the_cancellation_only() -> None:
    trace = fall_traces.fall(50.0, seed=11, duration_s=35.0)
    detector = FallDetector(50)
    p = pendant.Pendant(tx=Transmitter(mac=bytes(6)))
    sent: list[bytes] = []
    for t, (x, y, z) in zip(trace.t, trace.a, strict=True):
        p, frame, decision = pendant.on_accelerometer(p, detector, t, x, y, z)
        if frame is not None:
            sent.append(frame)
        if decision is not None:
            p, frame = pendant.help_long_press(p, t + 5.0)
            sent.append(frame)
    assert [decode(f)["events"] for f in sent] == [{"button_2": "long_press"}]


def _after_impact(rate: float, *, lie_s: float, then: str, seed: int) -> Trace:
    """Walk, fall at 6 s (0.3 s at 0.3 g, a 4 g impact for 120 ms, turned 90 degrees), then: `then` = "up":
    lie still until `lie_s` after the impact, then walk upright again (a fall with recovery); `then` =
    "still": move about on the floor (a 2 Hz swing of 0.5 g in |a|) until `lie_s`, then lie still."""
    lying = fall_traces.tilted(90.0)
    upright = fall_traces.UPRIGHT
    fall_at = 6.0

    def scaled(v: fall_traces.Vector, k: float) -> fall_traces.Vector:
        return (v[0] * k, v[1] * k, v[2] * k)

    def signal(t: float) -> fall_traces.Vector:
        if t < fall_at - 0.3:
            return scaled(upright, 1.0 + 0.25 * math.sin(2 * math.pi * 2.0 * t))
        if t < fall_at - 0.06:
            return scaled(lying, 0.3)
        if t < fall_at + 0.06:
            return scaled(lying, 1.0 + 3.0 * math.sin(math.pi * ((t - fall_at) / 0.12 + 0.5)))
        if then == "up" and t >= fall_at + lie_s:
            return scaled(upright, 1.0 + 0.25 * math.sin(2 * math.pi * 2.0 * t))
        if then == "still" and fall_at + 0.5 <= t < fall_at + lie_s:
            return scaled(lying, 1.0 + 0.5 * math.sin(2 * math.pi * 2.0 * t))
        return lying

    return fall_traces.build(rate, 14.0, signal, impact_t=fall_at, seed=seed)


@pytest.mark.parametrize("rate", RATES)
def test_a_fall_followed_by_a_recovery_is_a_fall(rate: float) -> None:
    """FallAllD counts a fall the wearer gets up from as a fall (the cancel window is theirs): lying still
    through the first posture window (1-2 s after the impact) is enough, even if they are up at 2.5 s."""
    found = decisions(_after_impact(rate, lie_s=2.5, then="up", seed=12))
    assert len(found) == 1
    first_window_end = 6.0 + fall_detector.SETTLE_S + fall_detector.POSTURE_WINDOW_S
    assert first_window_end <= found[0].decided_at <= first_window_end + 1.5 / rate + 0.13


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("moving_s", "window"), [(1.9, 2), (2.9, 3)])
def test_a_faller_who_moves_on_the_floor_first_is_seen_lying_in_a_later_window(rate: float, moving_s: float,
                                                                            window: int) -> None:
    found = decisions(_after_impact(rate, lie_s=moving_s, then="still", seed=13))
    assert len(found) == 1
    window_end = 6.0 + fall_detector.SETTLE_S + window * fall_detector.POSTURE_WINDOW_S
    assert window_end <= found[0].decided_at <= window_end + 1.5 / rate + 0.13
    assert found[0].angle_deg == pytest.approx(90, abs=10)


@pytest.mark.parametrize("rate", RATES)
def test_moving_through_every_posture_window_is_not_a_fall(rate: float) -> None:
    """Moving about on the floor for longer than the last window (4 s after the impact): not seen down."""
    moving = 6.0 + fall_detector.SETTLE_S + fall_detector.DOWN_WINDOWS * fall_detector.POSTURE_WINDOW_S
    assert decisions(_after_impact(rate, lie_s=moving - 6.0 + 0.2, then="still", seed=14)) == []


def test_input_ending_early_in_a_later_window_is_not_reported() -> None:
    """The first window said "not down"; the input ends 0.3 s into the second: too little to say (not a fall),
    while 0.6 s of it, lying still, is judged and is a fall."""
    rate = 50.0
    whole = _after_impact(rate, lie_s=1.9, then="still", seed=15)
    second = 6.0 + fall_detector.SETTLE_S + fall_detector.POSTURE_WINDOW_S

    def cut(at: float) -> Trace:
        n = sum(1 for t in whole.t if t <= at)
        return Trace(rate, whole.t[:n], whole.a[:n], whole.impact_t)

    assert decisions(cut(second + 0.3)) == []
    assert len(decisions(cut(second + 0.9))) == 1


SISFALL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sisfall"
FALLALLD = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fallalld_neck"


def _bench() -> object:
    bench_file = Path(__file__).resolve().parents[3] / "bench" / "falls.py"
    spec = importlib.util.spec_from_file_location("bench_falls", bench_file)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.skipif(not SISFALL.is_dir(), reason="shared SisFall data not present")
def test_sisfall_at_50_hz_sensitivity_and_specificity() -> None:
    bench: Any = _bench()
    recordings = bench.load_sisfall()
    assert recordings
    score = bench.score([(r, bench.resample(r.accel, r.rate_hz, 50.0)) for r in recordings], 50.0)
    assert score.sensitivity >= 0.95
    assert score.specificity >= 0.95


@pytest.mark.skipif(not FALLALLD.is_dir(), reason="shared FallAllD data not present")
def test_fallalld_the_set_no_constant_was_chosen_on_at_20_and_50_hz() -> None:
    """The neck-worn (pendant-position) set, which the shipped constants were not chosen on (bench/falls.py)."""
    bench: Any = _bench()
    recordings = bench.load_fallalld()
    assert len(recordings) > 200
    for rate in (20.0, 50.0):
        score = bench.score([(r, bench.resample(r.accel, r.rate_hz, rate)) for r in recordings], rate)
        assert score.sensitivity >= 0.95, rate
        assert score.specificity >= 0.95, rate
