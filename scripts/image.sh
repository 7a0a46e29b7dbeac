#!/usr/bin/env bash
# `make image`: build the container image from the Dockerfile with podman, then
# check it: the gRPC health check answers SERVING, the process is not root, and
# SIGTERM drains and exits 0. CI runs it after `make test` (.ci/run).
#
# No container registry is reachable here, so the base image is a Debian root
# filesystem with Python made by debootstrap and imported; its tarball is kept in
# $PAYMENTS_IMAGE_CACHE so that later runs on the machine skip that step. The
# host's CA bundle and pip configuration are mounted into the build steps only
# (pip may reach PyPI through a mirror or proxy set there): nothing of them lands
# in the image. Dependencies come at the releases of constraints.txt.
#   usage: scripts/image.sh         env: IMAGE_TAG (payments:local), BASE_IMAGE (built here)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${IMAGE_TAG:-payments:local}
venv=${VENV:-.venv}  # its grpcurl asks the container's health
cache=${PAYMENTS_IMAGE_CACHE:-/var/cache/payments-image}
suite=bookworm
base=${BASE_IMAGE:-localhost/payments-base:$suite}
# crun fails on some hosts' cgroups (this machine's among them); runc works. The
# limits are lowered from the host's, which a container may not be granted.
limits=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
podman=(podman --runtime runc --cgroup-manager cgroupfs)

say() { echo "image: $*" >&2; }
scripts/install-debian.sh podman runc debootstrap

make_base() {  # a Debian root filesystem with Python 3 and venv, as an image
  local tarball=$cache/$suite-python.tar root
  if [ ! -s "$tarball" ]; then
    say "debootstrap $suite with Python into $tarball (once per machine)"
    mkdir -p "$cache"
    root=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      "$suite" "$root" http://deb.debian.org/debian >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf "$root"
  fi
  "${podman[@]}" import --quiet --change 'CMD ["python3"]' "$tarball" "$base" >/dev/null
}

if ! "${podman[@]}" image exists "$base"; then
  [ -z "${BASE_IMAGE:-}" ] || { say "base image $base not found"; exit 1; }
  make_base
fi

build_mounts=()
for file in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
  [ -f "$file" ] && build_mounts+=(--volume "$file:$file:ro")
done
started=$SECONDS
build=("${podman[@]}" build --network host "${limits[@]}" --build-arg "BASE_IMAGE=$base" --file Dockerfile)
# The mounts serve the builder stage's pip only. A mounted file leaves an empty stub
# where it was mounted, so the runtime stage is built in a second pass without them,
# reusing the builder stage's cached layers.
"${build[@]}" "${build_mounts[@]}" --target builder . >/dev/null
"${build[@]}" --tag "$tag" . >/dev/null
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$tag")
say "built $tag in $((SECONDS - started)) s, $((size / 1000000)) MB"

leaked=$("${podman[@]}" run --rm "${limits[@]}" --entrypoint sh "$tag" -c 'ls /etc/pip.conf 2>/dev/null || echo none')
[ "$leaked" = none ] || { say "the host's pip configuration leaked into the image"; exit 1; }
host_ca=$(sha256sum </etc/ssl/certs/ca-certificates.crt)
image_ca=$("${podman[@]}" run --rm "${limits[@]}" --entrypoint sh "$tag" -c 'sha256sum </etc/ssl/certs/ca-certificates.crt')
[ "$host_ca" != "$image_ca" ] || say "note: the image's CA bundle equals the host's (a stock host?)"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=payments-image-check-$$
cleanup() {
  "${podman[@]}" rm --force --ignore "$name" >/dev/null 2>&1 || true
  "${podman[@]}" volume rm --force "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# As the manifests run it: a read-only root; writable only /tmp and the SQLite volume.
"${podman[@]}" run --detach --name "$name" --network host "${limits[@]}" --read-only \
  --tmpfs /tmp:rw,mode=1777 --volume "$name:/app/data" \
  --env PAYMENTS_GRPC_ADDRESS="127.0.0.1:$port" --env PAYMENTS_DRAIN_SECONDS=1 \
  "$tag" serve >/dev/null
started=$SECONDS
serving() { "$venv/bin/grpcurl" -plaintext "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null | grep -q '"SERVING"'; }
until serving; do
  if ((SECONDS - started > 60)) || [ "$("${podman[@]}" inspect --format '{{.State.Running}}' "$name")" != true ]; then
    "${podman[@]}" logs "$name" >&2 || true
    say "no SERVING answer from the container"
    exit 1
  fi
  sleep 0.5
done
say "SERVING $((SECONDS - started)) s after start"

user=$("${podman[@]}" exec "$name" id -u)
[ "$user" != 0 ] || { say "the server runs as root"; exit 1; }
say "runs as uid $user"

"${podman[@]}" stop --time 30 "$name" >/dev/null
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
logs=$("${podman[@]}" logs "$name" 2>&1)
if [ "$code" != 0 ] || ! grep -q draining <<<"$logs" || ! grep -q '"stopped"' <<<"$logs"; then
  echo "$logs" >&2
  say "SIGTERM did not drain cleanly (exit code $code)"
  exit 1
fi
say "SIGTERM: drained and exited 0"
say "ok: $tag $("${podman[@]}" image inspect --format '{{.Digest}}' "$tag")"
