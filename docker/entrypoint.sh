#!/bin/sh
# Entrypoint of llem's worker images. The llem process on the host measures
# energy; this container only runs the backend harness that llem bind-mounts
# at /llem/run (so the harness always matches the host's llem version) and
# passes as the command, e.g.: python3 /llem/run/harness/harness_vllm.py
# The run spec arrives on stdin; events leave on stdout.
set -eu
if [ "$#" -eq 0 ]; then
  echo "llem worker image: no command given; llem starts this image with its harness command" >&2
  exit 2
fi
if [ ! -d /llem/run ]; then
  echo "llem worker image: /llem/run is not mounted; start workers through llem (runner: docker)" >&2
  exit 2
fi
exec "$@"
