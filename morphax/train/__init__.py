"""Training children: jitted JAX steps and data loaders."""

from ._checkpoint import load_module as load_module
from ._checkpoint import load_variables as load_variables
from ._data import Dataset as Dataset
from ._data import from_arrays as from_arrays
from ._data import load_digits as load_digits
from ._data import prefetch_to_device as prefetch_to_device
from ._files import load_cifar10 as load_cifar10
from ._files import load_idx as load_idx
from ._files import load_image_folder as load_image_folder
from ._files import read_idx as read_idx
from ._loop import FitResult as FitResult
from ._loop import TrainingDiverged as TrainingDiverged
from ._loop import evaluate as evaluate
from ._loop import fit as fit
from ._losses import LOSSES as LOSSES
from ._losses import binary_cross_entropy as binary_cross_entropy
from ._losses import cross_entropy as cross_entropy
from ._losses import mse as mse
from ._steps import TrainState as TrainState
from ._steps import clear_cache as clear_cache
from ._steps import init as init
from ._steps import make_eval_step as make_eval_step
from ._steps import make_train_step as make_train_step
