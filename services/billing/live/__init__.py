"""Billing changes pushed as they commit: the LISTEN side of the triggers of migration 0012
(`feed.ChangeFeed`, one connection per process) and the WatchBilling stream (`watch`)."""
