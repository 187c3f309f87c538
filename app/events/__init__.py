"""Events: the transactional outbox, consumer inbox and exceptions queue.

A service that changes business data calls ``publish()`` in the same session, so the
event commits or rolls back with the change. Nothing is sent to a broker from a
request or inside a transaction: the relay (``workers/relay.py``) publishes committed
rows afterwards, and consumers record what they processed in the inbox, in the same
transaction as their effect.
"""
