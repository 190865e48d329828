"""Layer 3 of 8: torch mechanics: removable hooks, receptive fields, blocks, safetensors weights and model cards."""
