"""The synthetic engine: rendered crops, rendered sets, contact sheets. Imports no Lightning, so
`jersey-cls-synth` starts at once."""
