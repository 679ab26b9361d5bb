"""Recording files: probe, convert, tag, artwork, transcripts and chapters.

This package is independent of the rest of the project: it never imports ``archive``.
"""
