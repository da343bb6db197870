"""The pipelines the scheduler runs, one file each (a package too, so that the import rules in pyproject.toml can name it)."""
