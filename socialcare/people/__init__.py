"""People: agents, teams, their login sessions and API tokens (models.py) and the one service
that adds, finds and changes them (service.py), for the command line, the pages and the API."""
