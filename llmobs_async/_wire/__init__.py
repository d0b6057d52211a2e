"""The wire format: JSON, JSON:API envelopes and loaders, and the records' hot path.

``json`` encodes and decodes (and is the one rule for what may be sent);
``jsonapi`` is the converter: envelopes, request bodies, responses to
models; ``records`` reads and writes dataset records by hand (measured);
``experiments`` reads the experiment answer of ``experiments.update``.
The bottom of the package: nothing here imports the transport, the rate
gate or the bulk engine.
"""
