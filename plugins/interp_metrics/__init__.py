"""Built-in metric plugins: ``au-distance`` and the attribution metrics of ``interp bench``."""
