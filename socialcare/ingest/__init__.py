"""Ingestion's database services: what each poll may do (its lease, the read cap, backoff and
pacing), the page write, billed reads, rate-limit snapshots and the incidents operators see.
The platform adapters that fetch the pages live in socialcare.sources."""
