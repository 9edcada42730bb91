"""Local stand-ins of external services, served over real HTTP for end-to-end tests."""
