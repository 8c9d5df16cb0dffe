"""Encode helpers against plain formulations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adjudicate.encode import enrolment_months


def months_numpy(since: np.ndarray, on: np.ndarray) -> np.ndarray:
    s, o = since.astype("datetime64[D]"), on.astype("datetime64[D]")
    sm, om = s.astype("datetime64[M]"), o.astype("datetime64[M]")
    sd = (s - sm.astype("datetime64[D]")).astype(np.int64)
    od = (o - om.astype("datetime64[D]")).astype(np.int64)
    return (om - sm).astype(np.int64) - (od < sd)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(-25567, 2932896), st.integers(-25567, 2932896)), min_size=1, max_size=200))
def test_enrolment_months_matches_calendar_arithmetic(pairs):
    since = np.array([p[0] for p in pairs], np.int32)
    on = np.array([p[1] for p in pairs], np.int32)
    assert (enrolment_months(since, on) == months_numpy(since, on)).all()


def test_enrolment_months_day_of_month_rule():
    d = lambda s: np.array([np.datetime64(s, "D").astype(np.int64)], np.int32)  # noqa: E731
    assert enrolment_months(d("2024-01-15"), d("2024-07-14"))[0] == 5
    assert enrolment_months(d("2024-01-15"), d("2024-07-15"))[0] == 6
    assert enrolment_months(d("2024-01-31"), d("2024-02-29"))[0] == 0
    assert enrolment_months(d("2024-03-10"), d("2024-01-01"))[0] == -3
