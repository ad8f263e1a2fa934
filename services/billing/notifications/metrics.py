"""What the notifier counts (Prometheus), served on its own port (METRICS_PORT)."""

from prometheus_client import Counter, Gauge

SENT = Counter(
    "notifications_channel_results_total",
    "Channels done per notification, by channel and outcome (sent, off, no_devices, …)",
    ["channel", "outcome"],
)
FAILED = Counter(
    "notifications_channel_failures_total",
    "Failed sends (retried or dead), by channel",
    ["channel"],
)
DEAD_LETTERED = Counter("notifications_dead_lettered_total", "Notifications given up on")
TOKENS_REMOVED = Counter(
    "notifications_push_tokens_removed_total",
    "Devices forgotten on DeviceNotRegistered",
    ["source"],
)
BACKLOG = Gauge(
    "notifications_backlog", "Notifications not sent, by state (pending, sending, dead)", ["state"]
)
