"""Synthetic accelerometer traces (in g) for the fall-detector tests: falls and fall-like activities.

Each trace is built at 1 kHz from a few physical phases and then averaged down to the wanted
rate, as an accelerometer run at that output data rate does (it averages; it does not pick
single instants). Orientation is a random rotation of the whole trace, since the pendant's
orientation on its cord is unknown. Nothing here comes from a real recording.
"""

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

BASE_HZ = 1000

Vector = tuple[float, float, float]
UPRIGHT: Vector = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Trace:
    rate_hz: float
    t: list[float]
    a: list[Vector]
    impact_t: float | None
    """When the (largest) impact happens, if there is one."""

    def csv(self) -> str:
        lines = ["t,ax,ay,az"]
        lines += [f"{t:.5f},{x:.5f},{y:.5f},{z:.5f}" for t, (x, y, z) in zip(self.t, self.a, strict=True)]
        return "\n".join(lines) + "\n"


def tilted(angle_deg: float) -> Vector:
    """Gravity as the sensor sees it after the body turned by `angle_deg` (about the x axis)."""
    a = math.radians(angle_deg)
    return (0.0, math.sin(a), math.cos(a))


def _scale(v: Vector, k: float) -> Vector:
    return (v[0] * k, v[1] * k, v[2] * k)


def _blend(a: Vector, b: Vector, w: float) -> Vector:
    v = (a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w, a[2] + (b[2] - a[2]) * w)
    n = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2) or 1.0
    return _scale(v, 1.0 / n)


def _rotation(rng: random.Random) -> Callable[[Vector], Vector]:
    """A uniformly random rotation (via a random unit quaternion)."""
    u1, u2, u3 = rng.random(), rng.random(), rng.random()
    qw = math.sqrt(1 - u1) * math.sin(2 * math.pi * u2)
    qx = math.sqrt(1 - u1) * math.cos(2 * math.pi * u2)
    qy = math.sqrt(u1) * math.sin(2 * math.pi * u3)
    qz = math.sqrt(u1) * math.cos(2 * math.pi * u3)
    m = (
        (1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)),
        (2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)),
        (2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)),
    )
    return lambda v: (sum(m[0][i] * v[i] for i in range(3)), sum(m[1][i] * v[i] for i in range(3)),
                      sum(m[2][i] * v[i] for i in range(3)))


def build(rate_hz: float, duration_s: float, signal: Callable[[float], Vector], *, impact_t: float | None,
          seed: int = 0, noise_g: float = 0.01, rotate: bool = True) -> Trace:
    """Sample `signal(t)` (g, body frame) at 1 kHz, add noise, rotate, and average down to `rate_hz`."""
    rng = random.Random(seed)
    rotate_fn = _rotation(rng) if rotate else (lambda v: v)
    step = BASE_HZ / rate_hz
    n_out = int(duration_s * rate_hz)
    ts: list[float] = []
    out: list[Vector] = []
    for k in range(n_out):
        lo, hi = round(k * step), round((k + 1) * step)
        sx = sy = sz = 0.0
        for i in range(lo, hi):
            x, y, z = signal(i / BASE_HZ)
            sx += x + rng.gauss(0, noise_g)
            sy += y + rng.gauss(0, noise_g)
            sz += z + rng.gauss(0, noise_g)
        count = hi - lo
        out.append(rotate_fn((sx / count, sy / count, sz / count)))
        ts.append(round(k / rate_hz, 6))
    return Trace(rate_hz, ts, out, impact_t)


def _bump(t: float, centre: float, width: float) -> float:
    """A half-sine pulse of unit height and `width` seconds centred on `centre`."""
    x = (t - centre) / width + 0.5
    return math.sin(math.pi * x) if 0.0 <= x <= 1.0 else 0.0


def _walking(t: float, after: Vector) -> Vector:
    """Upright walking: a 2 Hz vertical bounce of +-0.25 g (below the impact threshold)."""
    return _scale(after, 1.0 + 0.25 * math.sin(2 * math.pi * 2.0 * t))


def fall(rate_hz: float, *, seed: int = 0, free_fall: bool = True, peak_g: float = 4.0, end_angle: float = 90.0,
         fall_at: float = 6.0, duration_s: float = 12.0, walking: bool = True, gets_up: bool = False,
         moves_g: float = 0.0) -> Trace:
    """Walk (or stand), optionally a 0.3 s free fall at 0.3 g, an impact of `peak_g` lasting 120 ms, then lie
    turned by `end_angle` degrees, still (or, with `gets_up`, walking again 0.5 s after the impact; with
    `moves_g`, lying but moving: a 2 Hz swing of that many g in |a|)."""
    lying = tilted(end_angle)
    impact_w = 0.12

    def signal(t: float) -> Vector:
        if t < fall_at - 0.6:
            return _walking(t, UPRIGHT) if walking else UPRIGHT
        if t < fall_at - 0.3:  # losing balance: the body starts to turn
            return _blend(UPRIGHT, lying, (t - fall_at + 0.6) / 0.6 * 0.5)
        if t < fall_at - impact_w / 2:
            g = _blend(UPRIGHT, lying, 0.5 + (t - fall_at + 0.3) / 0.3 * 0.4)
            return _scale(g, 0.3) if free_fall else g
        if t < fall_at + impact_w / 2:
            return _scale(lying, 1.0 + (peak_g - 1.0) * _bump(t, fall_at, impact_w))
        if gets_up and t > fall_at + 0.5:
            return _walking(t, UPRIGHT)
        swing = moves_g * math.sin(2 * math.pi * 2.0 * t) if t > fall_at + 0.5 else 0.0
        return _scale(lying, 1.0 + 0.3 * _bump(t, fall_at + 0.25, 0.2) + swing)  # a small rebound, then still

    return build(rate_hz, duration_s, signal, impact_t=fall_at, seed=seed)


def sit_down_hard(rate_hz: float, *, seed: int = 0) -> Trace:
    """Drop onto a chair: a 3 g impact, but the trunk only leans back 25 degrees."""
    return fall(rate_hz, seed=seed, free_fall=False, peak_g=3.0, end_angle=25.0, walking=False)


def jump(rate_hz: float, *, seed: int = 0) -> Trace:
    """A jump: 0.3 s airborne (|a| about 0), a 4 g landing, and the body stays upright."""
    land = 6.0

    def signal(t: float) -> Vector:
        if land - 0.35 <= t < land - 0.05:
            return _scale(UPRIGHT, 0.05)
        if land - 0.05 <= t < land + 0.05:
            return _scale(UPRIGHT, 1.0 + 3.0 * _bump(t, land, 0.1))
        return UPRIGHT

    return build(rate_hz, 12.0, signal, impact_t=land, seed=seed)


def lie_down_on_bed(rate_hz: float, *, seed: int = 0) -> Trace:
    """Lying down deliberately: the body turns 90 degrees over 2 s, with no impact at all."""

    def signal(t: float) -> Vector:
        w = min(1.0, max(0.0, (t - 5.0) / 2.0))
        return _scale(_blend(UPRIGHT, tilted(90.0), w), 1.0 + 0.2 * _bump(t, 6.0, 1.0))

    return build(rate_hz, 12.0, signal, impact_t=None, seed=seed)
