"""The training engine: one loop that every way of training a pynn model drives.

`Trainer` owns the batch buffers, gathering, the fused loss, the penalty, the optimizer step,
the divergence guard and evaluation; `Inference` the chunked forward pass; `checks` the
validation done once at the door.
"""
from .checks import as_inputs, check_loss_fits, check_trainable, class_sample_weights
from .distributed import DataParallel, rank_zero
from .inference import CHUNK_ROWS, Inference
from .trainer import Batches, EpochResult, Trainer, TrainingDivergedError, evaluate

__all__ = ["CHUNK_ROWS", "Batches", "DataParallel", "EpochResult", "Inference", "Trainer",
           "TrainingDivergedError", "as_inputs", "check_loss_fits", "check_trainable",
           "class_sample_weights", "evaluate", "rank_zero"]
