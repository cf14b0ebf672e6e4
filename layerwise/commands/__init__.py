"""The ``layerwise`` command's verbs, one module each, named after the verb; ``layerwise/cli.py`` parses and dispatches."""
