"""runner: benchmark image-classification architectures side by side with PaddlePaddle."""
from runner.cpu import tune_math_library

# Must run before anything imports paddle: MKL reads its CPU dispatch setting once, at load time.
tune_math_library()

__version__ = "0.1.0"

import warnings as _warnings

# paddle warns on every import that ccache is missing; it only matters for building C++ extensions.
_warnings.filterwarnings("ignore", message="No ccache found")
# paddle.Model.train_batch re-wraps label tensors with to_tensor and warns about it on every batch.
_warnings.filterwarnings("ignore", message="To copy construct from a tensor")
# paddle.vision's BatchNorm layers announce their (documented) running-statistics policy every epoch.
_warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
# paddle's LinearWarmup hands its whole state, the wrapped schedule's under "LinearWarmup_LR", to
# the base loader, which warns about that key; LinearWarmup restores the wrapped schedule from it
# right after (tests/run/test_train.py resumes a warm-up + cosine run to the same metrics).
_warnings.filterwarnings("ignore", message="There are some unused values in state_dict")
