"""The SCAIP codec (telecare_protocol/scaip.py): vectors, round trips, typed errors.

Vectors: request bodies captured from four makers' units (Essence, Possum, Telealarm, Doro),
as quoted in an open-source SCAIP receiver published on GitHub; the standard's own examples
(SS 91100, CLC/TS 50134-9) are not published, so none are used here."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telecare_protocol import scaip
from telecare_protocol.codes import DeviceType, EventCode
from telecare_protocol.scaip import MessageType, Request, Response, ScaipError, StatusNumber

ESSENCE_HEARTBEAT = (b"<mrq><ref>00001A85</ref><cha>0</cha><mty>PI</mty><cid>26317</cid><dty>02</dty><did>00</did>"
                     b"<crd>no-voice:</crd><stc>102</stc></mrq>")
POSSUM_HEARTBEAT = b"<mrq><mty>PI</mty><ref>1998218577</ref><cid>10149471</cid><dty>2</dty></mrq>"
TELEALARM_HEARTBEAT = (b"<mrq><ref>v6l7eiuzBTfybE7j</ref><cid>999998</cid><dty>0002</dty><mty>PI</mty>"
                       b"<stc>0009</stc><lco>002</lco><crd>gsm:</crd><cha>0</cha></mrq>")
ESSENCE_ALARM = (b"<mrq><ref>00001883</ref><cha>0</cha><mty>ME</mty><cid>26317</cid><dty>02</dty><did>00</did>"
                 b"<crd>gsm:+37284463906</crd><stc>010</stc></mrq>")
POSSUM_ALARM = b"<mrq><ref>1193308443</ref><cid>10149471</cid><dty>3</dty><stc>10</stc><crd>gsm:</crd></mrq>"
TELEALARM_MALFUNCTION = (b"<mrq><ref>lmepivnFqmI8Jvv1</ref><cid>999998</cid><dty>0002</dty><mty>ME</mty>"
                         b"<stc>0067</stc><crd>gsm:</crd><cha>0</cha></mrq>")
TELEALARM_FIXED_TRIGGER = (b"<mrq><ref>yhexGeV5E49zglfi</ref><cid>999998</cid><dty>0004</dty><mty>ME</mty>"
                           b"<stc>0010</stc><lco>002</lco><crd>gsm:</crd><cha>0</cha></mrq>")
DORO_ALARM = (b"<mrq><ref>803137200003</ref><mty>ME</mty><cid> 8031372</cid><dty>0004</dty><stc>0010</stc>"
              b"<crd>gsm:+</crd></mrq>")


@pytest.mark.parametrize(("body", "reference", "caller", "device_type", "message_type", "status"), [
    (ESSENCE_HEARTBEAT, "00001A85", "26317", 2, MessageType.HEARTBEAT, 102),
    (POSSUM_HEARTBEAT, "1998218577", "10149471", 2, MessageType.HEARTBEAT, None),
    (TELEALARM_HEARTBEAT, "v6l7eiuzBTfybE7j", "999998", 2, MessageType.HEARTBEAT, 9),
    (ESSENCE_ALARM, "00001883", "26317", 2, MessageType.MESSAGE, 10),
    (POSSUM_ALARM, "1193308443", "10149471", 3, MessageType.MESSAGE, 10),
    (TELEALARM_MALFUNCTION, "lmepivnFqmI8Jvv1", "999998", 2, MessageType.MESSAGE, 67),
    (TELEALARM_FIXED_TRIGGER, "yhexGeV5E49zglfi", "999998", 4, MessageType.MESSAGE, 10),
    (DORO_ALARM, "803137200003", "8031372", 4, MessageType.MESSAGE, 10),
])
def test_makers_captures_parse_and_round_trip(body: bytes, reference: str, caller: str, device_type: int,
                                             message_type: MessageType, status: int | None) -> None:
    request = scaip.parse_request(body)
    assert (request.reference, request.caller_id, request.device_type, request.message_type,
            request.status_code) == (reference, caller, device_type, message_type, status)
    assert scaip.parse_request(scaip.build_request(request)) == request


def test_the_elements_we_do_not_interpret_are_kept_as_sent() -> None:
    request = scaip.parse_request(ESSENCE_ALARM)
    assert request.text("crd") == "gsm:+37284463906" and request.text("did") == "00" and request.text("cha") == "0"
    assert request.text("lte") is None


@pytest.mark.parametrize(("body", "heartbeat", "device_type", "code"), [
    (ESSENCE_HEARTBEAT, True, None, None),
    (POSSUM_HEARTBEAT, True, None, None),
    (TELEALARM_HEARTBEAT, True, None, None),  # a heartbeat, whatever its status says
    (ESSENCE_ALARM, False, DeviceType.COMMUNICATION_LINK, EventCode.MANUAL_ALARM),  # the unit's own button
    (POSSUM_ALARM, False, DeviceType.PERSONAL_TRIGGER, EventCode.MANUAL_ALARM),
    (TELEALARM_MALFUNCTION, False, DeviceType.COMMUNICATION_LINK, EventCode.DEVICE_FAULT),
    (TELEALARM_FIXED_TRIGGER, False, DeviceType.PULL_CORD, EventCode.MANUAL_ALARM),
    (DORO_ALARM, False, DeviceType.PULL_CORD, EventCode.MANUAL_ALARM),
])
def test_captures_mean_what_our_vocabulary_says(body: bytes, heartbeat: bool, device_type: DeviceType | None,
                                                code: EventCode | None) -> None:
    meaning = scaip.meaning(scaip.parse_request(body))
    assert (meaning.heartbeat, meaning.device_type, meaning.code) == (heartbeat, device_type, code)


def request(**changes: object) -> Request:
    base = {"reference": "A1", "caller_id": "26317", "device_type": 5, "status_code": 9}
    base.update(changes)
    return Request(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "code"), [
    ({"device_type": 5, "status_code": 9}, EventCode.FALL_DETECTED),  # fall detector, automatic alarm
    ({"device_type": 30, "status_code": 9}, EventCode.FALL_DETECTED),  # man-down detector
    ({"device_type": 5, "status_code": 10}, EventCode.MANUAL_ALARM),  # the pendant's button
    ({"device_type": 23, "status_code": 9}, EventCode.MANUAL_ALARM),  # a smoke detector: if in doubt, go out
    ({"device_type": 5, "message_type": MessageType.RESET}, EventCode.FALL_CANCELLED),
    ({"device_type": 3, "status_code": 19}, EventCode.ALARM_CANCELLED),
    ({"device_type": 3, "status_code": 16}, EventCode.BATTERY_LOW),
    ({"device_type": 14, "status_code": 76}, EventCode.DOOR_OPENED),
    ({"device_type": 14, "status_code": 21}, EventCode.DOOR_CLOSED),
    ({"device_type": 48, "status_code": 85}, EventCode.POWER_FAILURE),
    ({"device_type": 48, "status_code": 86}, EventCode.POWER_RESTORED),
    ({"device_type": 3, "status_code": 123}, EventCode.DEVICE_NOT_SEEN),
    ({"device_type": 12, "status_code": 71}, EventCode.BED_OCCUPIED),
    ({"device_type": 10, "status_code": 71}, EventCode.ACTIVITY),
    ({"device_type": 3, "status_code": 125}, EventCode.TAMPER),
])
def test_status_codes_map_onto_ours(changes: dict[str, object], code: EventCode) -> None:
    assert scaip.meaning(request(**changes)).code == code


def test_what_has_no_counterpart_is_not_stored_and_says_why() -> None:
    information = scaip.meaning(request(device_type=3, status_code=10, message_type=MessageType.INFORMATION))
    assert information.code is None and not information.heartbeat and "already sent" in information.why_not
    pill = scaip.meaning(request(device_type=11, status_code=81))
    assert pill.code is None and "pill not taken (0081)" in pill.why_not


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"", StatusNumber.INVALID_FORMAT, "body"),
    (b"not xml", StatusNumber.INVALID_FORMAT, "body"),
    (b"<mrq><ref>A1</ref>", StatusNumber.INVALID_FORMAT, "body"),
    (b"<mrs><ref>A1</ref><snu>0</snu></mrs>", StatusNumber.INVALID_FORMAT, "body"),
    (b'<!DOCTYPE mrq [<!ENTITY a "aaaaaaaaaa">]><mrq><ref>&a;</ref></mrq>', StatusNumber.INVALID_FORMAT, "body"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><xyz>1</xyz></mrq>", StatusNumber.INVALID_FORMAT, "xyz"),
    (b"<mrq><ref>A1</ref><cid>1</cid><cid>2</cid><dty>3</dty></mrq>", StatusNumber.INVALID_FORMAT, "cid"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty><x/></dty></mrq>", StatusNumber.INVALID_FORMAT, "dty"),
    (b"<mrq><cid>1</cid><dty>3</dty></mrq>", StatusNumber.MANDATORY_TAG_MISSING, "ref"),
    (b"<mrq><ref>A1</ref><dty>3</dty></mrq>", StatusNumber.MANDATORY_TAG_MISSING, "cid"),
    (b"<mrq><ref>A1</ref><cid>1</cid></mrq>", StatusNumber.MANDATORY_TAG_MISSING, "dty"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>42</dty></mrq>", StatusNumber.WRONG_DATA, "dty"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><stc>9999</stc></mrq>", StatusNumber.WRONG_DATA, "stc"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><stc>ten</stc></mrq>", StatusNumber.WRONG_DATA, "stc"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><mty>XX</mty></mrq>", StatusNumber.WRONG_DATA, "mty"),
    (b"<mrq><ref>A1</ref><cid>abc</cid><dty>3</dty></mrq>", StatusNumber.WRONG_DATA, "cid"),
    (b"<mrq><ref>has space</ref><cid>1</cid><dty>3</dty></mrq>", StatusNumber.WRONG_DATA, "ref"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><pri>12</pri></mrq>", StatusNumber.WRONG_DATA, "pri"),
    (b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><lte>" + b"x" * 33 + b"</lte></mrq>", StatusNumber.WRONG_DATA,
     "lte"),
    (b"<mrq><ref>A1</ref>" + b" " * 3000 + b"</mrq>", StatusNumber.TOO_LONG, "body"),
    ("<mrq><ref>é</ref></mrq>".encode("latin-1"), StatusNumber.INVALID_FORMAT, "body"),
])
def test_bad_requests_raise_a_typed_error_naming_the_field(body: bytes, status: StatusNumber, field: str) -> None:
    with pytest.raises(ScaipError) as refused:
        scaip.parse_request(body)
    assert (refused.value.status, refused.value.field) == (status, field)


def test_the_reference_is_kept_for_the_answer_when_it_can_be_read() -> None:
    with pytest.raises(ScaipError) as refused:
        scaip.parse_request(b"<mrq><ref>A1</ref><cid>1</cid><dty>3</dty><stc>9999</stc></mrq>")
    assert refused.value.reference == "A1"
    with pytest.raises(ScaipError) as broken:
        scaip.parse_request(b"<mrq><ref>B2</ref><cid>1</cid>")  # not well-formed: read without parsing
    assert broken.value.reference == "B2"


def test_responses_round_trip_and_carry_the_reference_and_status() -> None:
    ok = scaip.build_response(Response(reference="00001883", status=StatusNumber.OK))
    assert ok == b'<?xml version="1.0" encoding="UTF-8"?><mrs><ref>00001883</ref><snu>0</snu></mrs>'
    refused = Response(reference="A1", status=StatusNumber.WRONG_DATA, status_text="stc: <9999> & not known")
    assert scaip.parse_response(scaip.build_response(refused)) == refused
    long = scaip.parse_response(scaip.build_response(Response("A1", StatusNumber.BUSY, "x" * 500)))
    assert long.status_text == "x" * 128
    assert b"<ref>" not in scaip.build_response(Response("", StatusNumber.INVALID_FORMAT, "body: not XML"))


@given(st.binary(max_size=600))
def test_no_input_raises_anything_but_scaip_error(body: bytes) -> None:
    with contextlib.suppress(ScaipError):
        scaip.parse_request(body)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_no_element_text_raises_anything_but_scaip_error(text: str) -> None:
    from xml.sax.saxutils import escape

    for tag in ("ref", "cid", "dty", "stc", "pri", "crd", "mty"):
        body = "<mrq><ref>A1</ref><cid>1</cid><dty>3</dty></mrq>".replace(f"<{tag}>", f"<{tag}>{escape(text)}")
        if f"<{tag}>" not in body:
            body = body.replace("</mrq>", f"<{tag}>{escape(text)}</{tag}></mrq>")
        with contextlib.suppress(ScaipError):
            scaip.parse_request(body.encode())
