"""BTHome v2 advertisement encoder: the exact service data our battery devices broadcast.

A BTHome v2 frame is the service data of a BLE advertisement on the 16-bit UUID 0xFCD2
(https://bthome.io/format/). Its first byte is the device-info byte:

    bit 0     encrypted
    bit 1     MAC included (never set by our devices)
    bit 2     trigger-based (the device sends on events, not on a fixed interval)
    bits 5-7  BTHome version, always 2

then (object id, little-endian value) pairs in ascending object-id order. Our devices use:

    0x00 packet id    uint8, +1 per new frame, wraps at 256
    0x01 battery      uint8, percent
    0x11 opening      0 closed, 1 open
    0x15 battery low  0 normal, 1 low
    0x21 motion       0 clear, 1 detected
    0x23 occupancy    0 clear, 1 occupied
    0x2B tamper       0 off, 1 on
    0x3A button       one object per button, in button order; event code 0 none,
                      1 press, 2 double press, 4 long press

An encrypted frame carries the same objects AES-CCM encrypted with the device's 16-byte
bind key, followed by a 4-byte little-endian counter and a 4-byte tag (MIC). The nonce is
MAC (6 bytes, in display order) + UUID 0xFCD2 little-endian (D2 FC) + device-info byte +
counter (4 bytes, little-endian), as `bthome_ble` (parser.py, bthome_v2_encryption.py)
expects. There is no associated data.

Everything here is a pure function over a frozen dataclass. It avoids numpy and anything
but byte arithmetic so it ports to MicroPython; only `encode_encrypted` needs AES-CCM and
imports `cryptography` lazily (a MicroPython port swaps in its own AES-CCM).
"""

from dataclasses import dataclass, replace

BTHOME_UUID16 = 0xFCD2
BTHOME_SERVICE_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"
"""The 128-bit form of 0xFCD2, as a BLE stack (bleak) keys service data."""

VERSION = 2
INFO_ENCRYPTED = 0x01
INFO_MAC_INCLUDED = 0x02
INFO_TRIGGER_BASED = 0x04
INFO_VERSION_2 = VERSION << 5

OBJ_PACKET_ID = 0x00
OBJ_BATTERY = 0x01
OBJ_OPENING = 0x11
OBJ_BATTERY_LOW = 0x15
OBJ_MOTION = 0x21
OBJ_OCCUPANCY = 0x23
OBJ_TAMPER = 0x2B
OBJ_BUTTON = 0x3A

BUTTON_NONE = 0
BUTTON_PRESS = 1
BUTTON_DOUBLE_PRESS = 2
BUTTON_LONG_PRESS = 4
BUTTON_EVENTS = (BUTTON_NONE, BUTTON_PRESS, BUTTON_DOUBLE_PRESS, BUTTON_LONG_PRESS)

KEY_LENGTH = 16
MAC_LENGTH = 6
COUNTER_LENGTH = 4
MIC_LENGTH = 4
COUNTER_MAX = 0xFFFFFFFF
MAX_LEGACY_ADVERTISEMENT = 31
"""A legacy (BLE 4.x) advertisement carries at most 31 bytes of AD structures."""


@dataclass(frozen=True)
class BTHomeValues:
    """The values one frame carries. `None` (or no buttons) leaves an object out."""

    packet_id: int | None = None
    battery_pct: int | None = None
    opening: bool | None = None
    battery_low: bool | None = None
    motion: bool | None = None
    occupancy: bool | None = None
    tamper: bool | None = None
    buttons: tuple[int, ...] = ()
    """One event code per button, button 1 first (BUTTON_NONE for a button with no event)."""
    trigger_based: bool = True

    def __post_init__(self) -> None:
        if self.packet_id is not None and not 0 <= self.packet_id <= 255:
            raise ValueError(f"packet id {self.packet_id} is not a uint8")
        if self.battery_pct is not None and not 0 <= self.battery_pct <= 100:
            raise ValueError(f"battery {self.battery_pct}% is outside 0-100")
        for code in self.buttons:
            if code not in BUTTON_EVENTS:
                raise ValueError(f"button event code {code} is not one our devices send")


def device_info(*, encrypted: bool, trigger_based: bool) -> int:
    """The first byte of every frame."""
    info = INFO_VERSION_2
    if encrypted:
        info |= INFO_ENCRYPTED
    if trigger_based:
        info |= INFO_TRIGGER_BASED
    return info


def encode_objects(values: BTHomeValues) -> bytes:
    """The object list (the plaintext payload), in ascending object-id order."""
    out = bytearray()
    if values.packet_id is not None:
        out += bytes((OBJ_PACKET_ID, values.packet_id))
    if values.battery_pct is not None:
        out += bytes((OBJ_BATTERY, values.battery_pct))
    for obj_id, flag in (
        (OBJ_OPENING, values.opening),
        (OBJ_BATTERY_LOW, values.battery_low),
        (OBJ_MOTION, values.motion),
        (OBJ_OCCUPANCY, values.occupancy),
        (OBJ_TAMPER, values.tamper),
    ):
        if flag is not None:
            out += bytes((obj_id, 1 if flag else 0))
    for code in values.buttons:
        out += bytes((OBJ_BUTTON, code))
    return bytes(out)


def encode_plain(values: BTHomeValues) -> bytes:
    """Unencrypted service data for UUID 0xFCD2."""
    return bytes((device_info(encrypted=False, trigger_based=values.trigger_based),)) + encode_objects(values)


def mac_bytes(address: str) -> bytes:
    """"AA:BB:CC:DD:EE:FF" -> the 6 bytes in display order, as the nonce uses them."""
    mac = bytes.fromhex(address.replace(":", "").replace("-", ""))
    if len(mac) != MAC_LENGTH:
        raise ValueError(f"{address!r} is not a 6-byte MAC address")
    return mac


def _u32_le(value: int) -> bytes:
    return bytes((value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, (value >> 24) & 0xFF))


def nonce(mac: bytes, info: int, counter: int) -> bytes:
    """The 13-byte AES-CCM nonce: MAC + D2 FC + device-info byte + counter (little-endian)."""
    if len(mac) != MAC_LENGTH:
        raise ValueError("the MAC must be 6 bytes")
    if not 0 <= counter <= COUNTER_MAX:
        raise ValueError(f"counter {counter} is not a uint32")
    return mac + bytes((BTHOME_UUID16 & 0xFF, BTHOME_UUID16 >> 8, info)) + _u32_le(counter)


def encode_encrypted(values: BTHomeValues, *, key: bytes, mac: bytes, counter: int) -> bytes:
    """Encrypted service data: device info + ciphertext + counter (LE) + 4-byte MIC.

    `counter` must increase with every frame and survive a reboot (keep it in flash):
    the hub rejects a counter that does not increase as a replay.
    """
    if len(key) != KEY_LENGTH:
        raise ValueError("the bind key must be 16 bytes")
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM  # lazy: the plain path needs no crypto

    info = device_info(encrypted=True, trigger_based=values.trigger_based)
    sealed = AESCCM(key, tag_length=MIC_LENGTH).encrypt(nonce(mac, info, counter), encode_objects(values), None)
    ciphertext, mic = sealed[:-MIC_LENGTH], sealed[-MIC_LENGTH:]
    return bytes((info,)) + ciphertext + _u32_le(counter) + mic


def advertising_data(service_data: bytes) -> bytes:
    """The full legacy advertising payload: Flags AD (LE General Discoverable, BR/EDR not
    supported) + Service Data AD (type 0x16) for 0xFCD2. This is what a MicroPython port
    passes to `gap_advertise`."""
    flags = bytes((0x02, 0x01, 0x06))
    service = bytes((len(service_data) + 3, 0x16, BTHOME_UUID16 & 0xFF, BTHOME_UUID16 >> 8)) + service_data
    adv = flags + service
    if len(adv) > MAX_LEGACY_ADVERTISEMENT:
        raise ValueError(f"advertisement is {len(adv)} bytes; a legacy advertisement holds 31")
    return adv


@dataclass(frozen=True)
class Transmitter:
    """One device's radio identity and counters.

    `packet_id` is the id the next frame will carry (wraps at 256). `counter` is the next
    encryption counter; it only advances for keyed devices. Persist both across reboots.
    """

    mac: bytes
    key: bytes | None = None
    packet_id: int = 0
    counter: int = 0

    def __post_init__(self) -> None:
        if len(self.mac) != MAC_LENGTH:
            raise ValueError("the MAC must be 6 bytes")
        if self.key is not None and len(self.key) != KEY_LENGTH:
            raise ValueError("the bind key must be 16 bytes")
        if not 0 <= self.packet_id <= 255:
            raise ValueError("packet id must be 0-255")
        if not 0 <= self.counter <= COUNTER_MAX:
            raise ValueError("counter must be a uint32")


def transmit(tx: Transmitter, values: BTHomeValues) -> tuple[Transmitter, bytes]:
    """Stamp `values` with the next packet id, encode (encrypted if keyed) and advance the counters.

    Returns the transmitter state for the next frame and the service data to broadcast.
    """
    stamped = replace(values, packet_id=tx.packet_id)
    if tx.key is None:
        frame = encode_plain(stamped)
        counter = tx.counter
    else:
        frame = encode_encrypted(stamped, key=tx.key, mac=tx.mac, counter=tx.counter)
        counter = (tx.counter + 1) & COUNTER_MAX
    return replace(tx, packet_id=(tx.packet_id + 1) % 256, counter=counter), frame


LOW_BATTERY_PCT = 20
"""Our devices report battery low (object 0x15) at or below this charge."""


def battery_low(battery_pct: int) -> bool:
    return battery_pct <= LOW_BATTERY_PCT
