"""Torch mechanics: removable hooks, receptive fields, safetensors weights and model cards."""
