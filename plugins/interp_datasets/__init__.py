"""Built-in dataset plugins: ``ckplus`` (the CK+ release as distributed) and ``synthfacs``."""
