from jersey_cls.callbacks.curves import TrainingCurves
from jersey_cls.callbacks.dataset_summary import DatasetSummary
from jersey_cls.callbacks.evaluation import EvaluationReport

__all__ = ["DatasetSummary", "EvaluationReport", "TrainingCurves"]
