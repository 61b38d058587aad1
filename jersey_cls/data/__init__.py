from jersey_cls.data import doctor
from jersey_cls.data.datamodule import JerseyDataModule

__all__ = ["JerseyDataModule", "doctor"]
