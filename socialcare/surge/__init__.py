"""Surge mode: posts that say the same thing arriving well above their usual rate, as incidents."""
