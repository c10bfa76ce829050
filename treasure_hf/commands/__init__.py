"""``treasure`` subcommands of the subsystems that need torch; kept apart from those subsystems so
that ``treasure --help`` and the data commands start without importing torch."""
