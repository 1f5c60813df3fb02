#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run (for a lent GPU with little time): the CUDA tests of the
# fused kernels and the samplers, then the speed table, saved to benchmarks/results/ for the
# language-model chapter. Usage: bash benchmarks/gpu_session.sh   (from the repository root, .venv built)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
$PY -m pytest -m cuda tests/test_kernels.py tests/test_cuda.py -q -p no:cacheprovider
tests=$?
$PY benchmarks/sampler_speed.py --device cuda --size full --repeats 20 --save
bench=$?
echo "cuda tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
