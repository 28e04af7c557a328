"""The stages of a check, one module each; `registry` lists them in order, `stage` holds what
they share (the `Probe` shape and the `Context` they run in), `results` what they find."""
