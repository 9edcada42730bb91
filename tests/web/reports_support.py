"""Helpers for the reports tests: a stand-in digest builder and readers for CSV and HTML."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socialcare.metrics.digest import period_bounds
from socialcare.metrics.digest_model import Digest
from socialcare.web.report_export import CSV_COLUMNS


@dataclass
class FakeBuilder:
    """Stands in for build_digest: records each call, answers with digest (period/tz fitted)."""

    digest: Digest
    calls: list[dict[str, Any]]

    def __call__(self, **kw: Any) -> Digest:
        self.calls.append(kw)
        start, end = period_bounds(kw["period"], now=kw["now"], tz=kw["tz"])
        return replace(self.digest, period=kw["period"], tz=kw["tz"], start=start, end=end)


def csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def headline(body: str, label: str) -> list[str]:
    """The cells of the page's table row headed label."""
    row = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', body, re.S)
    assert row is not None, label
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def assert_json_matches_csv(client: TestClient, params: dict[str, str]) -> None:
    doc = client.get("/api/reports", params=params).json()
    rows = csv_rows(client.get("/reports.csv", params=params).text)
    groups = [("total", {"current": doc["total"], "previous": doc["previous"]})]
    if doc["next_reply"] is not None:
        posts = {"current": doc["next_reply"], "previous": doc["next_reply_previous"]}
        groups.append(("every customer post", posts))
    groups += [(g["name"], g) for g in doc["by_team"] + doc["by_priority"] + doc["by_language"]]
    rows = [r for r in rows if r["kind"] != "surge"]  # tests/web/test_reports_surges.py
    assert [r["group"] for r in rows] == [name for name, _g in groups]
    for row, (_name, group) in zip(rows, groups, strict=True):
        cur, prev = group["current"], group["previous"] or {}
        assert row["period_start"] == doc["start"].replace("Z", "+00:00")
        for column in CSV_COLUMNS[4:]:
            key = column.removeprefix("previous_")
            value = (prev if column.startswith("previous_") else cur).get(key)
            # The CSV rounds (seconds to 3 places, shares to 4); the JSON does not.
            want = (
                None if value is None else pytest.approx(value, abs=1e-3 if "_s" in key else 1e-4)
            )
            assert number(row[column]) == want, column


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the two nearest ranks (what percentile_cont does)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
