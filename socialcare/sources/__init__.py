"""Mention sources: each platform behind one MentionSource interface (see base.py)."""
