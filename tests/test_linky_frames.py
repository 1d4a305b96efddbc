"""The simulated Linky: frames every reader takes, registers consistent with the power."""

from __future__ import annotations

from han2mqtt import AutoDecoder
from han2mqtt.protocol.stream import ContentReader
from han2mqtt.simulator.linky import LINKY_ID, linky_frames


def test_every_frame_decodes_with_every_group_good():
    frames = linky_frames(40)
    reader = ContentReader("auto")
    contents = reader.read(b"".join(frames))
    assert len(contents) == 40
    assert reader.format == "tic"
    decoder = AutoDecoder()
    readings = [decoder.decode(content).fields for content in contents]
    assert decoder.stats.groups_dropped == 0
    assert {r["meter_id"] for r in readings} == {LINKY_ID}
    totals = [
        float(r["active_power_import_total_t1"]) + float(r["active_power_import_total_t2"])
        for r in readings
    ]
    assert totals == sorted(totals)
    assert all("active_power_import" not in r for r in readings)


def test_the_tariff_period_follows_the_hour():
    frames = linky_frames(1900, start_hour=5)  # 5:00 to 6:03: off-peak, then peak
    decoder = AutoDecoder()
    periods = [decoder.decode(frames[i]).fields["current_tariff"] for i in (0, 1899)]
    assert periods == ["HC", "HP"]
