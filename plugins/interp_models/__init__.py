"""Built-in model plugins: ``fer-cnn`` and a second architecture."""
