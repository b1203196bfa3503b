# Temporary: the two compiled modules under the one name the package now imports.
from fastbp._engine import *  # noqa: F403
from fastbp._kernels import *  # noqa: F403
from fastbp._kernels import ACTIVATIONS  # noqa: F401
