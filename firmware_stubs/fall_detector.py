"""The pendant's fall detector: a streaming, rate-independent, MicroPython-friendly state machine.

A fall, as body-worn accelerometers see it (docs/devices.md and docs/detection.md, "Falls"):

1. free fall: |a| well below 1 g while the body drops. Optional: many real falls (a
   slump, a fall from sitting, a fall broken by a hand on a table) show none, so the
   detector records it but never requires it;
2. impact: |a| jumps above IMPACT_G;
3. posture change: once the body has settled, the gravity vector points another way
   than it did before the fall (lying, or slumped, instead of upright);
4. stillness: while turned, |a| barely varies (the wearer is not walking away). Posture and
   stillness are read in up to DOWN_WINDOWS consecutive windows after the impact, and the
   first in which the wearer is down confirms the fall: one who lies still for a second and
   then gets up has fallen (the cancel window is theirs), and one who rolls over first is
   still seen lying.

Only the magnitude |a| and the ANGLE between two gravity vectors are used, so the result
does not depend on how the sensor is mounted or how a pendant hangs on its cord.

Rate independence: every window is a time in seconds, never a sample count. The gravity
history is kept as means over fixed 0.1 s blocks of the sample clock (a fixed-size ring,
whatever the rate), and the post-impact statistics are running sums over a time window.
The same constants therefore serve 20 Hz and 200 Hz input (tests/test_fall_detector.py
runs 20, 50, 100 and 200 Hz; bench/falls.py measures 20 and 50 Hz against 200 Hz).

MicroPython: only `math`, plain classes with `__slots__`, float state and preallocated
lists; `update` allocates nothing except the `FallDecision` it returns on a fall.

The constants come from the literature and from physics; the three that decide most
(IMPACT_G, POSTURE_CHANGE_DEG, STILL_STD_G) were then chosen from a small grid of values the
literature allows on ONE data set (SisFall, waist) and scored on ANOTHER that none was chosen
on (FallAllD, neck, the pendant's position), and the other way round (bench/falls.py; the
figures are in docs/detection.md, "Falls").
"""

import math

# --- constants, each with its source ---------------------------------------------------------

IMPACT_G = 1.8
"""Impact: |a| above 1.8 g. The literature's impact is 2-3 g (shared domain notes, "Falls");
Bourke, O'Brien & Lyons 2007 (Gait & Posture 26(2):194-199) showed a single upper threshold on
the resultant magnitude at the trunk separates falls from ADL. We go a little below its low end
because a fall onto a soft surface, or a slump, hits softly, and because an accelerometer at
20 Hz averages a ~100 ms impact peak over 50 ms blocks (measured: SisFall's soft falls peak at
1.65-2.2 g at 20-50 Hz). Posture and stillness, not the impact, reject the hard-but-harmless
events (sitting down hard, jumping, stumbling). Chosen from {1.8, 2.0, 2.5} g on SisFall (waist)
and scored on FallAllD (neck), which no constant was chosen on (bench/falls.py, docs/detection.md)."""

FREE_FALL_G = 0.6
"""Free fall: |a| below 0.6 g (domain notes: 0.4-0.6 g; the upper end, since a body rarely
falls freely). Kangas et al. 2008 (Gait & Posture 28(2):285-291) use the beginning of the
fall as one of their phases. Recorded on the decision, never required (see module doc)."""

FREE_FALL_MIN_S = 0.15
"""A free fall lasts at least 150 ms (domain notes) to count."""

FREE_FALL_LOOKBACK_S = 1.0
"""A free fall counts for an impact that follows within 1 s. Engineering choice: a fall from
standing height takes well under a second from losing balance to hitting the floor."""

BLOCK_S = 0.1
"""Gravity history resolution: the mean acceleration vector of each 0.1 s block. Engineering
choice: short against the 1 s windows below, long enough that 20 Hz still puts 2 samples in
a block."""

PRE_WINDOW_START_S = 2.0
PRE_WINDOW_END_S = 1.0
"""Orientation before the fall: the mean acceleration vector from 2 s to 1 s before the
first impact. Engineering choice: the descent itself takes up to about a second, so the
second before it is still upright (standing, walking or sitting), and a 1 s mean averages
out the steps of walking."""

HISTORY_S = 3.0
"""How far back the gravity ring reaches (must exceed PRE_WINDOW_START_S)."""

SETTLE_S = 1.0
POSTURE_WINDOW_S = 1.0
DOWN_WINDOWS = 3
"""After the LAST impact of an episode the body settles for 1 s; then posture and stillness are
read over consecutive 1 s windows, up to 3 of them (1-4 s after the impact), and the first
window in which the wearer is down (turned and still) confirms the fall. Kangas et al. 2008
read posture about 2 s after the impact; a single reading there misses a faller who lies for a
second or two and then gets up, and FallAllD (Saleh et al. 2021) counts a fall followed by a
recovery as a fall ("the detector should alarm even if the subject recovered"): the wearer
then cancels it in the pendant's cancel window. Three windows also let a faller who rolls or
shifts for a moment before lying still be seen lying. 4 s is well inside the ~20 s commercial
pendants take to analyse (domain notes)."""

MAX_EPISODE_S = 5.0
"""Impacts keep extending an episode (a fall often hits knee, hand, then hip) for at most 5 s
after its first impact; then it is judged, and a later impact starts a new episode. Engineering
choice: it bounds how long jogging (an impact every step) can hold the detector."""

POSTURE_CHANGE_DEG = 35.0
"""The gravity vector must turn by at least 35 degrees from the posture before the fall, and
stay turned for a posture window. Bourke & Lyons 2008 (Med Eng Phys 30:84-90) flag a trunk-angle
change above 0.59 rad (34 degrees). Upright -> lying is about 90, but a fall does not always end
lying flat: a faller who slides down a wall or slumps in or beside a chair ends sitting, the
chest tilted some 35-60 degrees, and a pendant on a cord rests on the chest at its tilt. What
keeps a smaller angle from false alarms is the rest of the pattern: a hard impact first, then
stillness (sitting back in a chair after dropping into it turns a chest sensor by 10-30
degrees; a stumble or a jump ends upright and moving). Chosen from {35, 45, 60} degrees on
SisFall and scored on FallAllD, as IMPACT_G."""

STILL_STD_G = 0.15
"""Stillness: the standard deviation of |a| over the posture window stays below 0.15 g.
Engineering choice: walking produces |a| swings of several tenths of a g each step, lying
(even breathing or shifting a little) a few hundredths; 0.15 g sits between the two so that
a wearer who is moving about but not walking still counts as down. Chosen from {0.1, 0.15,
0.2} g on SisFall and scored on FallAllD, as IMPACT_G."""

MIN_POSTURE_S = 0.5
"""End of input (`finish`), e.g. a short recording replayed: an episode whose posture window
is cut short is judged on the part of it there is, if that is at least 0.5 s; with less, on
the posture alone (the moments of settling are never still) of all the samples after the last
impact (up to SETTLE_S + 0.5 s of them); with no sample at all
after the impact it is reported as a fall ("if in doubt, go out": an impact followed by
nothing cannot be shown to be harmless). A running pendant never ends its input. 0.5 s is an
engineering choice: a few breaths' worth is the least that says "lying still"."""

MIN_RATE_HZ = 20.0
MAX_RATE_HZ = 200.0
MAX_GAP_PERIODS = 10.0
"""A gap of more than 10 sample periods (a lost radio link or a paused recording) resets the
detector's history: a gap is not a signal."""

_BLOCKS = int(HISTORY_S / BLOCK_S + 0.5) + 1


class FallDecision:
    """A confirmed fall. `t` is the time of the largest |a| sample of the impact episode (the
    impact time); `decided_at` is when the detector confirmed it (the pendant's cancel window
    starts then)."""

    __slots__ = ("angle_deg", "decided_at", "free_fall", "peak_g", "still", "t")

    def __init__(self, t: float, decided_at: float, peak_g: float, angle_deg: float, still: bool,
                 free_fall: bool) -> None:
        self.t = t
        self.decided_at = decided_at
        self.peak_g = peak_g
        self.angle_deg = angle_deg
        self.still = still
        self.free_fall = free_fall

    def __repr__(self) -> str:
        return (f"FallDecision(t={self.t:.3f}, decided_at={self.decided_at:.3f}, peak_g={self.peak_g:.2f}, "
                f"angle_deg={self.angle_deg:.1f}, still={self.still}, free_fall={self.free_fall})")


def angle_deg(ax: float, ay: float, az: float, bx: float, by: float, bz: float) -> float:
    """The angle between two vectors in degrees (0 when either is zero)."""
    na = math.sqrt(ax * ax + ay * ay + az * az)
    nb = math.sqrt(bx * bx + by * by + bz * bz)
    if na == 0.0 or nb == 0.0:
        return 0.0
    c = (ax * bx + ay * by + az * bz) / (na * nb)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


class FallDetector:
    """Feed every accelerometer sample (time in seconds, acceleration in g) to `update`.

    `update` returns a `FallDecision` when a fall is confirmed, else None. Call `finish` when
    the input ends (a replay) to judge an episode still waiting for its posture window.
    Samples whose time does not increase are ignored and counted in `ignored_samples`.
    """

    __slots__ = (
        "_all_m", "_all_m2", "_all_n", "_all_x", "_all_y", "_all_z", "_block_index", "_block_n", "_block_x",
        "_block_y", "_block_z", "_ep_first", "_ep_free_fall", "_ep_last", "_ep_peak", "_ep_peak_t", "_ep_ref",
        "_ff_end", "_ff_start", "_in_episode", "_last_t", "_post_m", "_post_m2", "_post_n", "_post_x", "_post_y",
        "_post_z", "_ring_i", "_ring_x", "_ring_y", "_ring_z", "_window", "episodes", "ignored_samples", "max_gap_s",
        "sample_rate_hz", "unconfirmable", "undecided",
    )

    def __init__(self, sample_rate_hz: float) -> None:
        if not MIN_RATE_HZ <= sample_rate_hz <= MAX_RATE_HZ:
            raise ValueError(f"sample rate {sample_rate_hz} Hz is outside {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz")
        self.sample_rate_hz = float(sample_rate_hz)
        self.max_gap_s = MAX_GAP_PERIODS / self.sample_rate_hz
        self.ignored_samples = 0
        self.episodes = 0
        """Impact episodes judged (falls and not)."""
        self.unconfirmable = 0
        """Impact episodes with no orientation history before them (input started mid-fall)."""
        self.undecided = 0
        """Impact episodes a clip ended too soon after to judge (`finish(clip=True)`)."""
        # Gravity ring: one mean vector per BLOCK_S, keyed by block index; fixed size.
        self._ring_x = [0.0] * _BLOCKS
        self._ring_y = [0.0] * _BLOCKS
        self._ring_z = [0.0] * _BLOCKS
        self._ring_i = [-1] * _BLOCKS  # block index held in each slot (-1: empty)
        self._reset()

    def _reset(self) -> None:
        for i in range(_BLOCKS):
            self._ring_i[i] = -1
        self._block_index = -1
        self._block_x = self._block_y = self._block_z = 0.0
        self._block_n = 0
        self._last_t: float | None = None
        self._ff_start: float | None = None
        self._ff_end = -1e9
        self._in_episode = False
        self._ep_first = self._ep_last = self._ep_peak_t = 0.0
        self._ep_peak = 0.0
        self._ep_free_fall = False
        self._ep_ref: tuple[float, float, float] | None = None
        self._clear_post()

    def _clear_post(self) -> None:
        self._window = 0
        self._clear_window()
        self._all_n = 0
        self._all_x = self._all_y = self._all_z = 0.0
        self._all_m = self._all_m2 = 0.0

    def _clear_window(self) -> None:
        self._post_n = 0
        self._post_x = self._post_y = self._post_z = 0.0
        self._post_m = self._post_m2 = 0.0

    # --- gravity history -------------------------------------------------------------------

    def _add_to_block(self, t: float, ax: float, ay: float, az: float) -> None:
        index = math.floor(t / BLOCK_S)
        if index != self._block_index:
            if self._block_n:
                slot = self._block_index % _BLOCKS
                n = self._block_n
                self._ring_x[slot] = self._block_x / n
                self._ring_y[slot] = self._block_y / n
                self._ring_z[slot] = self._block_z / n
                self._ring_i[slot] = self._block_index
            self._block_index = index
            self._block_x = self._block_y = self._block_z = 0.0
            self._block_n = 0
        self._block_x += ax
        self._block_y += ay
        self._block_z += az
        self._block_n += 1

    def _reference(self, t_impact: float) -> tuple[float, float, float] | None:
        """Mean gravity vector over [t_impact - PRE_WINDOW_START_S, t_impact - PRE_WINDOW_END_S).

        With less history than that (the input started just before the impact), the blocks that
        end at least PRE_WINDOW_END_S / 2 before the impact; with none, None."""
        for end_s in (PRE_WINDOW_END_S, PRE_WINDOW_END_S / 2):
            first = math.floor((t_impact - PRE_WINDOW_START_S) / BLOCK_S)
            last = math.floor((t_impact - end_s) / BLOCK_S)  # exclusive
            sx = sy = sz = 0.0
            n = 0
            for slot in range(_BLOCKS):
                index = self._ring_i[slot]
                if first <= index < last:
                    sx += self._ring_x[slot]
                    sy += self._ring_y[slot]
                    sz += self._ring_z[slot]
                    n += 1
            if n:
                return sx / n, sy / n, sz / n
        return None

    # --- the state machine -----------------------------------------------------------------

    def update(self, t: float, ax: float, ay: float, az: float) -> FallDecision | None:
        """One sample: time in seconds (monotonic), acceleration in g. A decision on a fall."""
        if self._last_t is not None:
            if not t > self._last_t:
                self.ignored_samples += 1
                return None
            if t - self._last_t > self.max_gap_s:
                decision = self.finish()
                self._reset()
                self._last_t = t
                self._sample(t, ax, ay, az)
                return decision
        self._last_t = t
        return self._sample(t, ax, ay, az)

    def _sample(self, t: float, ax: float, ay: float, az: float) -> FallDecision | None:
        mag = math.sqrt(ax * ax + ay * ay + az * az)
        # Free fall: track the current run below FREE_FALL_G.
        if mag < FREE_FALL_G:
            if self._ff_start is None:
                self._ff_start = t
            elif t - self._ff_start >= FREE_FALL_MIN_S:
                self._ff_end = t
        else:
            self._ff_start = None

        decision: FallDecision | None = None
        if mag > IMPACT_G:
            if self._in_episode and t - self._ep_first > MAX_EPISODE_S:
                # Impacts for MAX_EPISODE_S on end: the wearer is up and moving (jogging, say).
                # That episode is over; this impact starts a new one with a fresh reference.
                self._in_episode = False
                self.episodes += 1
            if not self._in_episode:
                self._open_episode(t)
            self._ep_last = t
            self._clear_post()
            if mag > self._ep_peak:
                self._ep_peak = mag
                self._ep_peak_t = t
        elif self._in_episode:
            since = t - self._ep_last
            if since >= SETTLE_S:
                self._post_n += 1
                self._post_x += ax
                self._post_y += ay
                self._post_z += az
                delta = mag - self._post_m  # Welford's running mean and variance of |a|
                self._post_m += delta / self._post_n
                self._post_m2 += delta * (mag - self._post_m)
                if since >= SETTLE_S + (self._window + 1) * POSTURE_WINDOW_S:
                    decision = self._judge(t, self._post_x, self._post_y, self._post_z,
                                           self._post_n, self._post_m2, last=self._window + 1 >= DOWN_WINDOWS)
                    if self._in_episode:  # not down yet: the next window
                        self._window += 1
                        self._clear_window()
            if since < SETTLE_S + MIN_POSTURE_S:
                # The samples after the last impact, for `finish` when the input ends while settling.
                self._all_n += 1
                self._all_x += ax
                self._all_y += ay
                self._all_z += az
                delta = mag - self._all_m
                self._all_m += delta / self._all_n
                self._all_m2 += delta * (mag - self._all_m)
        # The history is fed after the impact logic, so an impact never leaks into its own reference.
        self._add_to_block(t, ax, ay, az)
        return decision

    def _open_episode(self, t: float) -> None:
        self._in_episode = True
        self._ep_first = self._ep_last = self._ep_peak_t = t
        self._ep_peak = 0.0
        self._ep_free_fall = t - self._ff_end <= FREE_FALL_LOOKBACK_S
        self._ep_ref = self._reference(t)
        self._clear_post()

    def _judge(self, t: float, sx: float, sy: float, sz: float, n: int, m2: float, *,
               last: bool = True) -> FallDecision | None:
        """One posture window: a fall (the episode closes) if the posture turned and the wearer is still;
        otherwise the episode closes only if this was its `last` window (`DOWN_WINDOWS`)."""
        ref = self._ep_ref
        if ref is None:
            self._close()
            self.unconfirmable += 1
            return None
        turned = angle_deg(ref[0], ref[1], ref[2], sx / n, sy / n, sz / n)
        still = math.sqrt(m2 / n) < STILL_STD_G if n > 1 else True
        if turned >= POSTURE_CHANGE_DEG and still:
            self._close()
            return FallDecision(self._ep_peak_t, t, self._ep_peak, turned, still, self._ep_free_fall)
        if last:
            self._close()
        return None

    def _close(self) -> None:
        self._in_episode = False
        self.episodes += 1

    def finish(self, *, clip: bool = False) -> FallDecision | None:
        """The input has ended: judge an open episode on what there is (rule: MIN_POSTURE_S).

        `clip`: the input is a clip cut from a longer stream (an evaluation recording), whose end
        is where the cut was made, not the pendant's input stopping: an episode with less than
        MIN_POSTURE_S of posture window is then left undecided (None, counted in `undecided`)
        rather than judged on its settling or reported."""
        if not self._in_episode or self._last_t is None:
            return None
        t = self._last_t
        window_start = SETTLE_S + self._window * POSTURE_WINDOW_S
        if self._post_n and t - self._ep_last - window_start >= MIN_POSTURE_S:
            return self._judge(t, self._post_x, self._post_y, self._post_z, self._post_n, self._post_m2)
        if self._window:  # the windows before were judged not down; what is left is too short to say
            self._close()
            return None
        if clip:
            self._close()
            self.undecided += 1
            return None
        if self._all_n:  # settling is never still: judged on posture alone
            return self._judge(t, self._all_x, self._all_y, self._all_z, self._all_n, 0.0)
        self._close()
        if self._ep_ref is None:
            self.unconfirmable += 1
            return None
        return FallDecision(self._ep_peak_t, t, self._ep_peak, float("nan"), False, self._ep_free_fall)
