"""Evaluation: what validate and test report (metrics recomputed into reports and figures, track answers), the
training curves, and the calibration fitted when training ends."""

from jersey_cls.evaluation.calibrate import Calibrate
from jersey_cls.evaluation.curves import TrainingCurves
from jersey_cls.evaluation.report import EvaluationReport
from jersey_cls.evaluation.track_accuracy import TrackAccuracy

__all__ = ["Calibrate", "EvaluationReport", "TrackAccuracy", "TrainingCurves"]
