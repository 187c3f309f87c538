"""Audit trail: who changed what, when, under which request; tamper-evident.

A database trigger (``audit.capture``, migration 0402) writes one ``audit.log`` row
per insert, update and delete of tenant data, in the changing transaction, with the
acting user and request id from the transaction's settings. Workers seal the log
into a per-tenant hash chain (``audit.seals``); ``erp audit verify`` recomputes it.
"""
