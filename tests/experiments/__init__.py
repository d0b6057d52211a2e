"""Contract tests of the experiment runner (``client.experiments.run``, ``resume``, ``compare``).

Each module covers one concern of DESIGN.md "Version 0.3: experiments that run
themselves"; :mod:`.common` seeds datasets and reads what the fake stored.
"""
