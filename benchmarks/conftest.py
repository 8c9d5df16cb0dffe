"""pytest set-up for the benchmarks: never collect the cached data sets or
snapshots under benchmarks/data/ (a snapshot holds a copy of tests/)."""

collect_ignore_glob = ["data/*"]
