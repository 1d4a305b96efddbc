from datetime import date

import pytest

from han2mqtt.energy.calendar import PublicHolidays, supported_country


@pytest.mark.parametrize(
    ("country", "day", "holiday"),
    [
        ("NO", date(2026, 5, 17), True),  # Grunnlovsdag
        ("NO", date(2026, 12, 25), True),
        ("NO", date(2026, 12, 23), False),
        ("SE", date(2026, 6, 6), True),  # Sveriges nationaldag
        ("SE", date(2026, 1, 6), True),  # Trettondedag jul
        ("BE", date(2026, 7, 21), True),
        ("DK", date(2026, 12, 26), True),  # 2. juledag
        ("DK", date(2026, 6, 4), False),
    ],
)
def test_public_holidays(country: str, day: date, holiday: bool) -> None:
    assert PublicHolidays(country).is_holiday(day) is holiday


def test_names_and_unknown_countries() -> None:
    assert PublicHolidays("no").name(date(2026, 12, 24)) is None
    assert PublicHolidays("no").name(date(2026, 12, 26)) is not None
    assert not supported_country("XX")
    with pytest.raises(ValueError, match="no public-holiday calendar"):
        PublicHolidays("XX")
