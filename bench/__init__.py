"""exoimap benchmarks. Each module ``bench/<name>.py`` is runnable on its own as
``python -m bench.<name>`` and prints its numbers; ``make bench`` runs them all."""
