"""Crops on disk: layouts, the data doctor, the DataModule and the synthetic engine. Import from the modules;
this package imports nothing, so `jersey-cls-synth` starts without loading Lightning."""
