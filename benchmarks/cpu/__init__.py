"""CPU per request: plain aiohttp (floor) vs llmobs_async vs datadog-api-client (``run.py``)."""
