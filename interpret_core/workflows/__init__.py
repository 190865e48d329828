"""Layer 7 of 8: what the commands do (run, bench, train, visualize), callable from Python."""
