#!/usr/bin/env bash
# Puts ONNX Runtime's C API headers in DIR/include (default .device/ort), for building a TPAT output
# folder's custom-op library (make -C OUT ortops ONNXRUNTIME_DIR=DIR). The headers come from
# Debian's libonnxruntime-dev package (ONNX Runtime 1.21, API version 21; the library asks for 16),
# fetched from deb.debian.org: ONNX Runtime's PyPI wheels carry no C headers. DIR is outside git
# (.device/ is ignored); nothing here is committed.
set -euo pipefail
DIR=${1:-.device/ort}
DEB=libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb
URL=http://deb.debian.org/debian/pool/main/o/onnxruntime/$DEB
if [[ -f $DIR/include/onnxruntime_c_api.h ]]; then
    echo "fetch-ort-headers: $DIR/include already has onnxruntime_c_api.h"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -sSfL -o "$work/$DEB" "$URL" || { echo "fetch-ort-headers: cannot download $URL" >&2; exit 1; }
dpkg-deb -x "$work/$DEB" "$work/x" 2>/dev/null || (cd "$work" && ar x "$DEB" && mkdir x && tar -xf data.tar.* -C x)
# Nothing of the caller's is removed: an include/ without the header is theirs, not ours.
if [[ -e $DIR/include ]]; then
    echo "fetch-ort-headers: $DIR/include exists without onnxruntime_c_api.h; give an empty or new folder" >&2
    exit 1
fi
mkdir -p "$DIR"
cp -r "$work/x/usr/include/onnxruntime" "$DIR/include"
echo "fetch-ort-headers: ONNX Runtime headers in $DIR/include"
