"""Service metrics: first-response latency and SLA attainment."""
