# Run by the webui role with the venv's python (python -c): prints what the venv's torch was
# built for, as the lines of R/webui/torch-gpu.txt that the launchers read before loading
# a model. No GPU or driver is needed: the architectures are the ones compiled into torch
# (torch.cuda.get_arch_list() would say [] on a machine without a GPU).
import importlib.util
import sys

if importlib.util.find_spec('torch') is None:
    print('TORCH_VERSION=')
    print('TORCH_CUDA=')
    print('TORCH_ARCHS=')
    sys.exit(0)
import torch  # noqa: E402

flags = getattr(torch._C, '_cuda_getArchFlags', None)
archs = (flags() or '') if flags is not None and torch.version.cuda else ''
print('TORCH_VERSION=' + torch.__version__)
print('TORCH_CUDA=' + (torch.version.cuda or ''))
print('TORCH_ARCHS=' + ' '.join(archs.split()))
