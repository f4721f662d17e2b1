#!/bin/sh
# Builds v2k-vcsim offline (GOPATH mode, Debian's govmomi) into $1.
# Go 1.19 cannot build a package named by absolute path, hence the cd.
set -e
out=$(realpath -m "$1")
cd "$(dirname "$0")"
exec go build -o "$out" .
