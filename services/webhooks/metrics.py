"""What the webhooks processes count (Prometheus); each process serves its own /metrics."""

from prometheus_client import Counter, Histogram

RECEIVED = Counter("webhooks_events_received_total", "Events stored for the first time", ["source"])
DUPLICATES = Counter("webhooks_events_duplicate_total", "Events received again and acknowledged")
REJECTED = Counter("webhooks_requests_rejected_total", "Webhook requests refused", ["reason"])
OTHER_API_VERSION = Counter(
    "webhooks_events_other_api_version_total",
    "Events stored whose api_version is not the pinned one (an endpoint at another version)",
    ["api_version"],
)
DELIVERED = Counter("webhooks_events_delivered_total", "Events billing acknowledged", ["outcome"])
RETRIED = Counter("webhooks_delivery_retries_total", "Failed deliveries scheduled again", ["code"])
DEAD_LETTERED = Counter("webhooks_events_dead_lettered_total", "Events given up on", ["code"])
LAG = Histogram(
    "webhooks_receive_to_applied_seconds",
    "From storing an event to billing's acknowledgement",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
