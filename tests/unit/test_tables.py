"""The schema's own column type: instants stored and read as aware UTC (`tables.UTCDateTime`).
That the migrated database is this schema is tests/integration/test_schema_matches_migrations.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime, Interval
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from duban.storage import tables

DIALECTS = [sqlite.dialect(), postgresql.psycopg.dialect()]
SHANGHAI = ZoneInfo("Asia/Shanghai")


class TestInstants:
    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    def test_aware_instants_bind_as_utc(self, dialect: Dialect) -> None:
        """An aware instant is bound converted to UTC (the same instant); None stays None."""
        ours = tables.UTCDateTime()
        bound = ours.process_bind_param(datetime(2026, 11, 2, 9, tzinfo=SHANGHAI), dialect)
        assert bound == datetime(2026, 11, 2, 1, tzinfo=UTC)
        assert bound is not None and bound.tzinfo is UTC
        assert ours.process_bind_param(None, dialect) is None

    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    def test_reads_are_aware_utc(self, dialect: Dialect) -> None:
        """A naive stored value (SQLite keeps UTC without an offset) reads as UTC; an aware one is converted to UTC."""
        ours = tables.UTCDateTime()
        naive = ours.process_result_value(datetime(2026, 11, 2, 1), dialect)  # noqa: DTZ001
        aware = ours.process_result_value(datetime(2026, 11, 2, 9, tzinfo=SHANGHAI), dialect)
        for read in (naive, aware):
            assert read == datetime(2026, 11, 2, 1, tzinfo=UTC)
            assert read is not None and read.tzinfo is UTC
        assert ours.process_result_value(None, dialect) is None

    @pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
    def test_a_naive_instant_is_refused(self, dialect: Dialect) -> None:
        """Binding a datetime without a timezone raises instead of guessing one."""
        with pytest.raises(ValueError, match="timezone"):
            tables.UTCDateTime().process_bind_param(datetime(2026, 11, 2, 9), dialect)  # noqa: DTZ001

    def test_stored_as_a_timezone_aware_datetime(self) -> None:
        """The column is `DateTime(timezone=True)`, what the migrations create; a timedelta compares as an interval."""
        ours = tables.UTCDateTime()
        assert isinstance(ours.impl_instance, DateTime) and ours.impl_instance.timezone is True
        assert isinstance(ours.coerce_compared_value(None, timedelta(hours=1)), Interval)
        assert ours.coerce_compared_value(None, datetime(2026, 11, 2, tzinfo=UTC)) is ours
        assert repr(ours) == "UTCDateTime()"
