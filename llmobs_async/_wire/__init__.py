"""The wire format: JSON:API envelopes and loaders, and the records' hot path.

``jsonapi`` is the converter: envelopes, request bodies, responses to
models; ``records`` reads and writes dataset records by hand (measured);
``experiments`` reads the experiment answer of ``experiments.update``;
``events`` checks and encodes one span or metric of an experiment.
All of it encodes and reads with :mod:`llmobs_async._json` (the one rule
for what may be sent), which stays in the core because the models use it
too. Nothing here imports the transport, the rate gate or the bulk engine.
"""
