"""Crops on disk: one reader per layout, the data doctor, the augmentation and the DataModule. Import from the
modules; this package imports nothing, so `jersey-cls-synth` starts without loading Lightning."""
