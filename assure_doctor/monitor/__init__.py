"""The long-running monitor: apscheduler jobs, a ping budget that survives restarts, and a
Prometheus exporter. Imported only by `assure-doctor monitor`."""
