"""Background work: broker, tenant middleware, event dispatch, relay, scheduler.

The rules (ARCHITECTURE section 5): events are outbox rows committed with the change;
the relay publishes committed rows (message id = outbox row id); every consumer
records (consumer, event) in the inbox in the same transaction as its effect; every
message carries tenant and correlation ids, and the middleware sets the tenant
context around the actor exactly as a web request does.
"""
