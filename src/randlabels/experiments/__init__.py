"""Experiments of SPEC section 4: each module has its quick and paper settings side by side,
``run(config, out_dir)`` that writes the plotted numbers as JSON, and ``plot(results)``."""
