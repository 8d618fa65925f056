#!/usr/bin/env bash
# install-gnu-time.sh — make sure GNU time is installed (Debian package
# "time") and print its path. The benchmarks measure a child's peak RSS
# through it: the rusage a Go parent gets for a child it started counts the
# parent's own RSS at the child's exec (os/exec starts children with vfork),
# GNU time's fork from a tiny process does not. Idempotent.
set -euo pipefail

BIN=/usr/bin/time
if [[ ! -x "${BIN}" ]]; then
  echo "install-gnu-time: apt-get install -y time" >&2
  if [[ "$(id -u)" != 0 ]]; then
    echo "install-gnu-time: ${BIN} is missing and installing it needs root (apt-get install time)" >&2
    exit 1
  fi
  apt-get install -y time >&2 || { apt-get update >&2 && apt-get install -y time >&2; }
fi
echo "${BIN}"
