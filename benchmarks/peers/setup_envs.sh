#!/usr/bin/env bash
# Create one virtual environment per peer under $PEER_ENVS (default /work/peer-envs; never inside the repo).
# Each env is installed from its frozen requirements file (the exact versions the benchmark ran with) with
# --no-deps, so pip does not try to resolve the peers' declared dependencies (TF Privacy declares TensorFlow).
#
#   bash benchmarks/peers/setup_envs.sh            # all three
#   bash benchmarks/peers/setup_envs.sh art        # one
#
# How the frozen files were first obtained (kept for the record; what each peer needs beyond its metadata):
#   art:          pip install adversarial-robustness-toolbox==1.20.1 "scikit-learn==1.5.*" "numpy<2.1" scipy
#                 + packaging (ART 1.20.1 imports it at package import but does not declare it)
#   tfprivacy:    pip install "scikit-learn==1.4.*" "numpy<2" "pandas<2" statsmodels scipy immutabledict
#                 pip install --no-deps tensorflow-empirical-privacy==0.1.0
#                 (immutabledict: imported by epsilon_lower_bound.py; TensorFlow is never imported by the
#                 membership_inference_attack submodules we use)
#   privacymeter: pip install privacy-meter==1.0.1 (declares no dependencies at all), then
#                 numpy scipy scikit-learn pandas matplotlib seaborn jinja2 pillow; its package still imports
#                 tensorflow, torch and opacus at module level (see peer_privacymeter.py).
#   (issue 15; every command pins torch==2.13.0 - an unpinned torch pulls a multi-GB CUDA build; this machine
#    finds torch-2.13.0+cpu in its local wheel folder)
#   leakpro:      pip install "torch==2.13.0" "torchvision==0.28.0" ./LeakPro   (snapshot c47752fa, source only)
#                 then by hand: optuna, opacus (leakpro/schemas.py imports optuna at package import; both are
#                 declared only in the `mia` extra) and transformers (leakpro.metrics.attack_result ->
#                 fl_utils/save_text.py imports it at package import; declared only in the `synthetic` extra).
#                 torchvision 0.28.0 from the registry is built against CUDA torch (its _C.so links
#                 libtorch_cuda.so/libc10_cuda.so): with torch 2.13.0+cpu `import torchvision` fails with
#                 "RuntimeError: operator torchvision::nms does not exist", and LeakPro imports torchvision at
#                 package import (image extension). Uninstalled again; peer_leakpro.py puts a stand-in module
#                 tree into sys.modules of its own process (none of the attacks run here calls torchvision).
#   pmrmia:       Privacy Meter's GitHub scripts (ml_privacy_meter.tar.gz, e384af8; not a package, nothing to
#                 install): its attacks.py needs numpy + scikit-learn only. Its pipeline (run_mia.py ->
#                 models/utils.py) also imports torch, torchvision, transformers and peft at module level; installed
#                 torch==2.13.0 numpy scipy scikit-learn pandas pyyaml matplotlib transformers peft datasets
#                 (HF datasets: dataset/__init__.py imports it); torchvision
#                 removed for the same CUDA-build reason as above.
#   sacroml:      pip install sacroml==2.0.1 "torch==2.13.0": installs as declared (acro 1.0.2, xgboost 3.2.0,
#                 which drags nvidia-nccl-cu12 (~200 MB of CUDA library) into a CPU-only env).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_ENVS="${PEER_ENVS:-/work/peer-envs}"
PY="${PYTHON:-python3.11}"
peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(art tfprivacy privacymeter leakpro pmrmia sacroml)
SHARED_PEERS="${SHARED_PEERS:-$HERE/../../../shared/peers}"
[ -d "$SHARED_PEERS" ] || SHARED_PEERS=/work/shared/peers
mkdir -p "$PEER_ENVS/src"
for tgz in leakpro ml_privacy_meter; do   # source snapshots -> $PEER_ENVS/src/{LeakPro,ml_privacy_meter}
  case " ${peers[*]} " in *" leakpro "*|*" pmrmia "*)
    [ -f "$SHARED_PEERS/$tgz.tar.gz" ] && tar xzf "$SHARED_PEERS/$tgz.tar.gz" -C "$PEER_ENVS/src" ;; esac
done
for p in "${peers[@]}"; do
  req="$HERE/requirements-$p.txt"
  [ -f "$req" ] || { echo "no $req" >&2; exit 2; }
  env="$PEER_ENVS/$p"
  echo "== $p -> $env"
  [ -x "$env/bin/python" ] || "$PY" -m venv "$env"
  "$env/bin/python" -m pip install -q --upgrade pip
  "$env/bin/python" -m pip install -q --no-deps -r "$req"
  if [ "$p" = leakpro ]; then "$env/bin/python" -m pip install -q --no-deps "$PEER_ENVS/src/LeakPro"; fi
done
echo "check:"
[ -x "$PEER_ENVS/art/bin/python" ] && "$PEER_ENVS/art/bin/python" -W ignore -c "import art; print('art', art.__version__)" 2>/dev/null || true
[ -x "$PEER_ENVS/tfprivacy/bin/python" ] && "$PEER_ENVS/tfprivacy/bin/python" -c \
  "from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import membership_inference_attack; print('tfprivacy ok')" || true
[ -x "$PEER_ENVS/privacymeter/bin/python" ] && { "$PEER_ENVS/privacymeter/bin/python" -c "import privacy_meter.metric" 2>&1 | tail -1; } || true
[ -x "$PEER_ENVS/sacroml/bin/python" ] && "$PEER_ENVS/sacroml/bin/python" -c "import sacroml.attacks.likelihood_attack; print('sacroml ok')" 2>&1 | tail -1 || true
[ -x "$PEER_ENVS/pmrmia/bin/python" ] && "$PEER_ENVS/pmrmia/bin/python" -c "import sys; sys.path.insert(0, '$PEER_ENVS/src/ml_privacy_meter'); import attacks; print('pmrmia ok')" 2>&1 | tail -1 || true
[ -x "$PEER_ENVS/leakpro/bin/python" ] && (cd "$HERE" && "$PEER_ENVS/leakpro/bin/python" -c "import peer_leakpro as P; P.stub_torchvision(); from leakpro import LeakPro; print('leakpro ok')" 2>&1 | tail -1) || true
