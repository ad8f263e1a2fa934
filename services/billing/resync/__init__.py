"""Resync and reconcile: the mirror rebuilt from Stripe's lists (`resync`), and compared with
them (`reconcile`), through the rule by which events write it (`mirror.write_answer`)."""
