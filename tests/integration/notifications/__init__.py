"""Notifications end to end inside billing (issue 13 §1): one billing server on a database of
the package's own (a notifier drains the whole outbox, so no other test's notifications are in
the way), the local SMTP sink and the stand-in for Expo's push API."""
