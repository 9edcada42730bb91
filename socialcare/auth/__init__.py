"""People who work the queues: passwords, sessions, API tokens, roles and what each may do."""
