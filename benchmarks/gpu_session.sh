#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one run (for a lent GPU with little time): the CUDA tests of the
# fused kernels and the samplers, then Gumbel-max at decode shapes against a copy and an amax (flat and
# hierarchical race) and the speed table, saved to benchmarks/results/ for the language-model chapter. Usage: bash benchmarks/gpu_session.sh   (from the repository root, .venv built)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
$PY -m pytest -m cuda tests/unit/test_kernels.py tests/unit/test_cuda.py -q -p no:cacheprovider -n 0
tests=$?
$PY benchmarks/race_bandwidth.py --repeats 50 --save
race=$?
$PY benchmarks/sampler_speed.py --device cuda --size full --repeats 20 --save
bench=$(( $? || race ))
echo "cuda tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
