"""Usage-based prices (Stripe Billing Meters): the meters mirror (`meters`), the usage records
internal services report (`records`, RecordUsage and GET /v1/usage), and the sender that delivers
them to Stripe's meter events API (`sender`), on the tables of migration 0013 (`tables`)."""
