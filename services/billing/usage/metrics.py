"""What usage recording and sending count (Prometheus), on billing's metrics port."""

from prometheus_client import Counter, Gauge

RECORDED = Counter(
    "billing_usage_records_total",
    "RecordUsage calls that stored a record (recorded) or found its identifier (duplicate)",
    ["outcome"],
)
SENT = Counter(
    "billing_usage_records_sent_total",
    "Usage records done with Stripe: sent, already_known (Stripe had the identifier) or failed "
    "(refused for good)",
    ["outcome"],
)
RETRIED = Counter(
    "billing_usage_records_send_retries_total", "Sends that failed and wait for another attempt"
)
BACKLOG = Gauge("billing_usage_records_pending", "Usage records not sent to Stripe yet")
