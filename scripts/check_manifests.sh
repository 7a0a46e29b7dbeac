#!/usr/bin/env bash
# `make lint` for deploy/kubernetes: render the base and every overlay with
# kubectl's built-in Kustomize, validate each object against the Kubernetes
# OpenAPI schemas bundled in kubernetes-validate (offline, strict: unknown
# fields fail), then scan with checkov (offline). A finding is fixed in the
# manifests or skipped there with a checkov.io/skip annotation saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
kubernetes_version=${KUBERNETES_VERSION:-1.32.0}
command -v kubectl >/dev/null || scripts/install-debian.sh kubernetes-client
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  name=$(echo "${dir%/}" | tr / -)
  # The older forms the files use for kubectl 1.20 draw deprecation warnings from newer ones.
  kubectl kustomize "$dir" 2> >(grep -v "^# Warning: .* is deprecated" >&2) >"$rendered/$name.yaml"
done
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "$rendered"/*.yaml
# The base has no namespace of its own (an overlay sets it): scan what is applied.
mkdir "$rendered/applied" && cp "$rendered"/deploy-kubernetes-overlays-*.yaml "$rendered/applied/"
BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --directory "$rendered/applied" --framework kubernetes \
  --quiet --compact --skip-download >"$rendered/checkov.txt" 2>&1 \
  || { cat "$rendered/checkov.txt"; echo "manifests: checkov found problems (above)" >&2; exit 1; }
echo "manifests: $(ls "$rendered"/*.yaml | wc -l) renderings valid for Kubernetes $kubernetes_version; checkov clean"
