"""Notifications, exactly once per fact: billing writes one row per (kind, Stripe object) into
its outbox in the transaction that applies the causing event (`outbox.record`); the notifier
(`python -m services.billing notifier`, its own Deployment) sends them by email (SMTP) and Expo
push, with retries, backoff and a dead letter (`sender`)."""
