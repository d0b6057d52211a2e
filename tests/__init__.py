"""Tests for llmobs_async, run against the real fake server on loopback."""
