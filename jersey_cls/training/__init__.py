"""Training: checkpoints and what they mean, the run folder, the weights a run starts from, and the callbacks a
fit runs with."""

from jersey_cls.training.best_checkpoints import BestCheckpoints, TrackEarlyStopping
from jersey_cls.training.checkpoint_io import AtomicCheckpointIO
from jersey_cls.training.dataset_summary import DatasetSummary
from jersey_cls.training.divergence import DivergenceGuard
from jersey_cls.training.ema import EMA
from jersey_cls.training.last_checkpoint import LastCheckpoint
from jersey_cls.training.relabel import Relabel
from jersey_cls.training.run_folder import CSVLogs

__all__ = [
    "AtomicCheckpointIO",
    "BestCheckpoints",
    "CSVLogs",
    "DatasetSummary",
    "DivergenceGuard",
    "EMA",
    "LastCheckpoint",
    "Relabel",
    "TrackEarlyStopping",
]
