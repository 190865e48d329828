"""Built-in attribution plugins: deconvnet, guided backprop and Captum baselines."""
