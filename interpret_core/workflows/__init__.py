"""Workflows: what the commands do (run, bench, train, visualize), callable from Python."""
