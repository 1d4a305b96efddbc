from __future__ import annotations

from han2mqtt.model import MeterReading
from han2mqtt.tracker import UNKNOWN_METER, MeterTracker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reading(**fields: float | str) -> MeterReading:
    return MeterReading(dict(fields), {f"1-0:{i}.7.0.255": 1 for i, _ in enumerate(fields)})


def test_list1_frames_go_to_the_meter_learned_from_list2():
    tracker = MeterTracker(60, None, Clock())
    state, came_online, is_new = tracker.observe(_reading(active_power_import=5))
    assert state.meter_id == UNKNOWN_METER
    state, came_online, is_new = tracker.observe(
        _reading(meter_id="7359992890941742", active_power_import=6)
    )
    assert (state.meter_id, came_online, is_new) == ("7359992890941742", True, True)
    state, came_online, is_new = tracker.observe(_reading(active_power_import=7))
    assert (state.meter_id, came_online, is_new) == ("7359992890941742", False, False)
    assert state.last_reading is not None
    assert state.last_reading.fields == {"meter_id": "7359992890941742", "active_power_import": 7}


def test_configured_meter_id_wins():
    tracker = MeterTracker(60, "house", Clock())
    state, _, _ = tracker.observe(_reading(meter_id="123"))
    assert state.meter_id == "house"


def test_offline_after_silence_then_online_again_once_each():
    clock = Clock()
    tracker = MeterTracker(30, None, clock)
    tracker.observe(_reading(meter_id="m"))
    clock.now += 29
    assert tracker.expire() == []
    clock.now += 2
    assert [s.meter_id for s in tracker.expire()] == ["m"]
    assert tracker.expire() == []
    assert tracker.last_frame_age() == 31
    state, came_online, is_new = tracker.observe(_reading(meter_id="m"))
    assert came_online and not is_new and state.online


def test_new_obis_codes_count_as_new_for_discovery():
    tracker = MeterTracker(60, None, Clock())
    tracker.observe(MeterReading({"meter_id": "m"}, {"0-0:96.1.0.255": "m"}))
    _, _, is_new = tracker.observe(
        MeterReading({"meter_id": "m"}, {"0-0:96.1.0.255": "m", "1-0:1.8.0.255": 5})
    )
    assert is_new


def test_the_merged_state_keeps_unscaled_marks_only_for_codes_not_sent_again():
    from han2mqtt.tracker import _merge  # noqa: PLC0415 - the merge rule itself

    first = MeterReading(
        {},
        {"1-0:1.8.0.255": 4913794, "1-0:1.7.0.255": 5},
        layout="x",
        unscaled=("1-0:1.8.0.255", "1-0:1.7.0.255"),
    )
    second = MeterReading(
        {"active_power_import": 1.956},
        {"1-0:1.7.0.255": 1.956},
        {"1-0:1.7.0.255": "kW"},
        {"active_power_import": "1-0:1.7.0.255"},
        "x",
    )
    merged = _merge(first, second)
    assert merged.unscaled == ("1-0:1.8.0.255",)
    assert merged.obis["1-0:1.8.0.255"] == 4913794
