import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.web.media import parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-2000", (990, 999)),
        ("bytes=0-0", (0, 0)),
        ("", None),
        ("bytes=0-1,5-6", None),  # several ranges: send the whole file
        ("items=0-5", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-4", "bytes=-0"])
def test_unsatisfiable_ranges_raise(header):
    with pytest.raises(ValueError):
        parse_range(header, 1000)


@given(
    first=st.one_of(st.none(), st.integers(0, 5000)),
    last=st.one_of(st.none(), st.integers(0, 5000)),
    size=st.integers(1, 4000),
)
def test_any_range_is_within_the_file_or_refused(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    try:
        result = parse_range(header, size)
    except ValueError:
        return
    if result is not None:
        start, end = result
        assert 0 <= start <= end < size
