from datetime import UTC, datetime

import pytest

from tracesearch.storage.es.indices import span_index_for, span_indices_between


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("1995-04-21T00:00:00", "ts-span-1995-04-21"),
        ("1995-04-21T23:59:59", "ts-span-1995-04-21"),
        ("1995-04-22T00:00:00", "ts-span-1995-04-22"),
        ("2024-02-29T12:00:00", "ts-span-2024-02-29"),
    ],
)
def test_daily_index_is_named_from_the_start_time_in_utc(start: str, expected: str) -> None:
    assert span_index_for("ts", ns(start)) == expected


def test_read_indices_cover_every_day_of_the_range() -> None:
    assert span_indices_between("ts", ns("1995-04-21T23:00:00"), ns("1995-04-23T01:00:00")) == [
        "ts-span-1995-04-21",
        "ts-span-1995-04-22",
        "ts-span-1995-04-23",
    ]


def test_read_indices_within_one_day_name_one_index() -> None:
    assert span_indices_between("ts", ns("1995-04-21T01:00:00"), ns("1995-04-21T02:00:00")) == ["ts-span-1995-04-21"]


def test_reversed_range_is_normalised() -> None:
    assert span_indices_between("ts", ns("1995-04-22T01:00:00"), ns("1995-04-21T02:00:00")) == [
        "ts-span-1995-04-21",
        "ts-span-1995-04-22",
    ]
