"""Rate limiting: the gate every request passes, and the budget shared with other processes.

``gate`` (buckets, tickets, the limits of one client) sits on ``headers``
(reading ``X-RateLimit-*`` and ``Retry-After``), ``share`` (how much of an
org's limit is ours) and ``waitqueue`` (the FIFO line of waiters);
``shared`` plans the budget in a store, ``redis_store`` (with its script,
``redis_store.lua``) is that store on Redis. ``limiter`` (with
``limiter.lua``) is the task's own rate limiter, ``LLMObsClient.rate_limiter``,
in-process or through the same store; ``permit`` is its ``acquire()``, which
recognizes a provider's 429. Nothing here imports the
transport, the bulk engine or the resources: they import this.
"""
