from jersey_cls.callbacks.best_checkpoints import BestCheckpoints
from jersey_cls.callbacks.curves import TrainingCurves
from jersey_cls.callbacks.dataset_summary import DatasetSummary
from jersey_cls.callbacks.deploy import Calibrate, ExportOnFitEnd, ExportOnnx, ModelCard
from jersey_cls.callbacks.divergence import DivergenceGuard
from jersey_cls.callbacks.ema import EMA
from jersey_cls.callbacks.evaluation import EvaluationReport
from jersey_cls.callbacks.last_checkpoint import LastCheckpoint
from jersey_cls.callbacks.predictions import PredictionWriter
from jersey_cls.callbacks.tracks import TrackAccuracy

__all__ = [
    "BestCheckpoints",
    "EMA",
    "DatasetSummary",
    "DivergenceGuard",
    "EvaluationReport",
    "Calibrate",
    "ExportOnFitEnd",
    "ExportOnnx",
    "ModelCard",
    "LastCheckpoint",
    "PredictionWriter",
    "TrackAccuracy",
    "TrainingCurves",
]
