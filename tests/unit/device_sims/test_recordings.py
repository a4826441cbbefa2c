"""`device_sims.recordings`: real labelled homes converted to a stream, a people file and labels, here on tiny
hand-written files in each data set's format (the real data lives outside the repository)."""

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device_sims.recordings import RecordingError, night_from, ordonez, vankasteren
from telecare_protocol import EventCode, decode

EVENING = datetime(2008, 2, 25, 22, 30, tzinfo=UTC).timestamp()


def vk_folder(tmp_path: Path) -> Path:
    (tmp_path / "houseA.sensor_names").write_text("12\tFront door\n24\tHall-Bedroom door\n8\tFridge\n")
    (tmp_path / "houseA.activity_names").write_text("1\tleave-house\n10\tgo-to-bed\n")
    morning = EVENING - 12.5 * 3600  # 10:00 that day
    (tmp_path / "houseA.sensors").write_text(
        f"{morning - 60:.0f}\t5\t8\n{morning:.0f}\t2\t12\n{EVENING - 600:.0f}\t3\t24\n{EVENING:.0f}\t2\t12\n")
    (tmp_path / "houseA.activities").write_text(
        f"{morning:.0f}\t3600\t1\n{EVENING:.0f}\t1800\t1\n{EVENING + 7200:.0f}\t30000\t10\n")
    return tmp_path


def test_van_kasteren_becomes_events_devices_and_labels(tmp_path: Path) -> None:
    home = vankasteren(vk_folder(tmp_path))
    codes = [(home.devices[m.device_id], m.code) for m in home.messages]
    assert codes == [("kitchen", EventCode.ACTIVITY), ("front_door", EventCode.DOOR_OPENED),
                     ("front_door", EventCode.DOOR_CLOSED), ("bedroom_door", EventCode.DOOR_OPENED),
                     ("bedroom_door", EventCode.DOOR_CLOSED), ("front_door", EventCode.DOOR_OPENED),
                     ("front_door", EventCode.DOOR_CLOSED)]
    # leaving at 10:00 is an outing; at 22:30 (after 22:00) a night exit
    assert [(label.incident, label.expect) for label in home.labels] == [
        ("outing", ("house_unoccupied",)), ("night_exit", ("night_exit",))]


def test_the_written_files_are_what_replay_and_score_read(tmp_path: Path) -> None:
    home = vankasteren(vk_folder(tmp_path))
    home.write(tmp_path / "a.jsonl", {"night_exit": {"return_minutes": 20}})
    home.write(tmp_path / "b.jsonl", {"night_exit": {"return_minutes": 20}})
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()  # ids from the rows
    assert [decode(line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()] == list(home.messages)
    person = tomllib.loads((tmp_path / "a.people.toml").read_text())["person"][0]
    assert person["rules"] == {"night_exit": {"return_minutes": 20}} and person["timezone"] == "UTC"
    labels = [json.loads(line) for line in (tmp_path / "a.labels.jsonl").read_text().splitlines()]
    assert labels[1]["start"] == "2008-02-25T22:30:00.000Z" and labels[1]["person"] == person["id"]


def test_ordonez_beds_and_doors(tmp_path: Path) -> None:
    header = "Start time\tEnd time\tLocation\tType\tPlace\r\n----\t----\t----\t----\t----\r\n"
    (tmp_path / "OrdonezB_Sensors.txt").write_text(
        header + "2012-11-12 21:00:00\t\t2012-11-12 21:00:05\t\tMaindoor\tMagnetic\tEntrance\r\n"
        "2012-11-12 21:30:00 \t2012-11-12 21:30:03\t\tDoor\t\tPIR\t\tKitchen\r\n"
        "2012-11-12 23:55:09\t\t2012-11-13 07:30:35\t\tBed\t\tPressure\tBedroom\r\n")
    (tmp_path / "OrdonezB_ADLs.txt").write_text(
        "Start time\tEnd time\tActivity\r\n----\t----\t----\r\n"
        "2012-11-12 21:00:00\t\t2012-11-12 21:20:59\t\tLeaving\t\t\r\n"
        "2012-11-12 21:40:00\t\t2012-11-12 21:30:59\t\tLeaving\r\n"  # ends before it starts: left out
        "2012-11-12 23:55:00\t\t2012-11-13 07:30:59\t\tSleeping\r\n")
    home = ordonez(tmp_path, "B")
    assert [(home.devices[m.device_id], m.code) for m in home.messages] == [
        ("front_door", EventCode.DOOR_OPENED), ("front_door", EventCode.DOOR_CLOSED), ("kitchen", EventCode.ACTIVITY),
        ("bed", EventCode.BED_OCCUPIED), ("bed", EventCode.BED_VACATED)]
    assert [label.incident for label in home.labels] == ["outing"]
    with pytest.raises(RecordingError, match="homes are A and B"):
        ordonez(tmp_path, "C")


def test_the_labels_night_starts_at_22_or_the_usual_bedtime_if_earlier() -> None:
    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2012, 11, 12, hour, minute, tzinfo=UTC)

    assert night_from([at(23), at(1), at(0, 30)]).isoformat() == "22:00:00"
    assert night_from([at(21), at(21, 30), at(20, 30), at(9)]).isoformat() == "21:00:00"
