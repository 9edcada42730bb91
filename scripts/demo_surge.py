"""Add the demo's outage to the bundled replay (socialcare/data/twcs_sample.csv), from real rows.

The rows are @SpotifyCares customer tweets of Tuesday 2017-11-28 (the shared TWCS extract
spotifycares_inbound_15k.csv), moved four weeks back and 17 minutes on, so they land on the
sample's own Tuesday (2017-10-31) at nearly the same hour of the week:

- the account's traffic from 15:00 to 23:00 UTC as it was: the baseline the detector learns in
  the replay's backfill;
- the outage of that evening (iPhone apps unable to connect): the replies to the brand tweets that
  at least three customers answered between 20:15 and 21:45, their 72 minutes laid onto 20
  minutes, order kept, as bench/surge.py lays its injected bursts; the first ones land in the
  backfill, the rest arrive live.

Running it again gives the same file: rows it added before are replaced.

    .venv/bin/python scripts/demo_surge.py
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from socialcare.sources.twcs import COLUMNS

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SOCIALCARE_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCE = DATA / "twcs" / "spotifycares_inbound_15k.csv"
SAMPLE = REPO / "socialcare" / "data" / "twcs_sample.csv"
FORMAT = "%a %b %d %H:%M:%S %z %Y"

DAY = datetime(2017, 11, 28, tzinfo=UTC)
TRAFFIC = (DAY + timedelta(hours=15), DAY + timedelta(hours=23))
OUTAGE = (DAY + timedelta(hours=20, minutes=15), DAY + timedelta(hours=21, minutes=45))
MIN_CUSTOMERS = 3  # distinct customers answering one brand tweet in OUTAGE: an outage thread
# The day's first post lands here, just before the sample's first (15:33:18): it starts the
# replay, so the backfill (REPLAY_BACKFILL_SECONDS, six hours) ends six hours after it.
FIRST_AT = datetime(2017, 10, 31, 15, 30, tzinfo=UTC)
BACKFILL = timedelta(hours=6)
# The outage's first post lands this long before the backfill ends, its last 20 minutes later:
# the surge opens a few minutes into the live part.
LEAD = timedelta(minutes=13)
BURST = timedelta(minutes=20)


def _at(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["created_at"], FORMAT).astimezone(UTC)


def demo_rows() -> list[dict[str, str]]:
    with SOURCE.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["created_at"] and r["inbound"] == "True"]
    day = [r for r in rows if TRAFFIC[0] <= _at(r) < TRAFFIC[1]]
    customers: dict[str, set[str]] = defaultdict(set)
    for r in day:
        if OUTAGE[0] <= _at(r) < OUTAGE[1]:
            customers[r["in_response_to_tweet_id"]].add(r["author_id"])
    threads = {t for t, who in customers.items() if t and len(who) >= MIN_CUSTOMERS}
    outage = [
        r
        for r in day
        if r["in_response_to_tweet_id"] in threads and OUTAGE[0] <= _at(r) < OUTAGE[1]
    ]
    first = min(_at(r) for r in outage)
    span = max(_at(r) for r in outage) - first
    shift = FIRST_AT - min(_at(r) for r in day)
    burst_start = FIRST_AT + BACKFILL - LEAD
    out = []
    for r in day:
        at = _at(r)
        moved = burst_start + (at - first) * (BURST / span) if r in outage else at + shift
        row = {c: r[c] for c in COLUMNS}
        row["created_at"] = moved.replace(microsecond=0).strftime(FORMAT)
        out.append(row)
    return sorted(out, key=lambda r: (_at(r), r["tweet_id"]))


def main() -> None:
    added = demo_rows()
    ids = {r["tweet_id"] for r in added}
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        kept = [r for r in csv.DictReader(fh) if r["tweet_id"] not in ids]
    with SAMPLE.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows([*kept, *added])
    print(f"{SAMPLE.name}: {len(kept)} rows kept, {len(added)} added")


if __name__ == "__main__":
    main()
