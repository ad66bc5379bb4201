"""Training of super-resolution networks: patch sampling, architectures, losses, the loop.

``xsr4rs.train(config)`` is the entry point; the submodules import TensorFlow only when a
network is built or a run starts.
"""

from xsr4rs.training.config import ConfigError, TrainConfig
from xsr4rs.training.trainer import TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "train"]
