"""FAKE lm_eval for llem's tests: see ../README.md. Not lm-evaluation-harness."""

__version__ = "0.4.9-fake"
