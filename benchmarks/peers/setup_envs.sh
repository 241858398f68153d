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
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEER_ENVS="${PEER_ENVS:-/work/peer-envs}"
PY="${PYTHON:-python3.11}"
peers=("$@")
[ ${#peers[@]} -eq 0 ] && peers=(art tfprivacy privacymeter)
mkdir -p "$PEER_ENVS"
for p in "${peers[@]}"; do
  req="$HERE/requirements-$p.txt"
  [ -f "$req" ] || { echo "no $req" >&2; exit 2; }
  env="$PEER_ENVS/$p"
  echo "== $p -> $env"
  [ -x "$env/bin/python" ] || "$PY" -m venv "$env"
  "$env/bin/python" -m pip install -q --upgrade pip
  "$env/bin/python" -m pip install -q --no-deps -r "$req"
done
echo "check:"
[ -x "$PEER_ENVS/art/bin/python" ] && "$PEER_ENVS/art/bin/python" -W ignore -c "import art; print('art', art.__version__)" 2>/dev/null || true
[ -x "$PEER_ENVS/tfprivacy/bin/python" ] && "$PEER_ENVS/tfprivacy/bin/python" -c \
  "from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import membership_inference_attack; print('tfprivacy ok')" || true
[ -x "$PEER_ENVS/privacymeter/bin/python" ] && { "$PEER_ENVS/privacymeter/bin/python" -c "import privacy_meter.metric" 2>&1 | tail -1; } || true
