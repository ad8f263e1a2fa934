"""Erasure and export on request (issue 14 §3): `DELETE /v1/me`, `GET /v1/me/export`, and Clerk's
`user.deleted`, `user.updated` and `organization.deleted`.

- inbox.py: billing's client of the webhooks inbox (WebhooksPrivacyService): billing never reads
  webhooks' tables, it asks; each service blanks its own schema.
- erasure.py: the erasure, step by step, recorded in billing.erasures so that it resumes.
- export.py: everything held about a principal, as one JSON document.
- clerk_events.py: Clerk's events, delivered by the relay like Stripe's.
"""
