# Shared helpers for the ci/*.sh scripts: timing and a uniform banner.
step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "::: ${name}"
  "$@"
  local rc=$?
  echo "::: ${name}: $((SECONDS - start)) s (exit ${rc})"
  return $rc
}
