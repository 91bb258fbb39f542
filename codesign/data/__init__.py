"""Committed data the software side reads: the PE area table from synthesis (see README for the command)."""
