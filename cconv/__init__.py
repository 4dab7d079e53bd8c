"""cconv: PyTorch-exact 2-D convolutions on the CPU, with numpy and nothing else.

    conv2d, conv_transpose2d      as torch.nn.functional
    Conv2d, ConvTranspose2d       as torch.nn (numpy weights; load a torch state_dict)
    set_num_threads, get_num_threads, show_config
"""
__version__ = "0.1.0"

from ._config import show_config
from ._threads import get_num_threads, set_num_threads
from .functional import conv2d, conv_transpose2d
from .modules import Conv2d, ConvTranspose2d

__all__ = ["conv2d", "conv_transpose2d", "Conv2d", "ConvTranspose2d", "set_num_threads",
           "get_num_threads", "show_config", "__version__"]
