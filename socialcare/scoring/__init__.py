"""Sentiment and urgency scoring."""
