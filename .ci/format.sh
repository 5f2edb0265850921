#!/usr/bin/env bash
# .ci/format.sh - formats mlc's C and CUDA sources with .clang-format.
#
#   .ci/format.sh           rewrites the files in place (run it before committing)
#   .ci/format.sh --check   changes nothing; lists each misformatted line and exits 1 (CI)
#
# Covers the tracked *.c *.h *.cu *.cuh files except templates/: those are source text
# the emitters paste into generated C and CUDA (templates/meson.build), laid out for the
# generated file rather than for this tree, and formatting them would change what mlc emits.
# The rules are clang-format 14's (Debian 12's); another version formats some lines
# otherwise, so the script refuses to run with one.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=fix
case "${1:-}" in
"") ;;
--check) mode=check ;;
*) echo "usage: .ci/format.sh [--check]" >&2; exit 2 ;;
esac

cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
    echo "format.sh: clang-format not found (Debian package clang-format; .ci/setup installs it)" >&2
    exit 2
fi
version=$("$cf" --version)
if ! [[ "$version" =~ version\ 14\. ]]; then
    echo "format.sh: needs clang-format 14, found: $version" >&2
    exit 2
fi

files=(':(glob)**/*.c' ':(glob)**/*.h' ':(glob)**/*.cu' ':(glob)**/*.cuh' ':(exclude)templates/')
if [ "$mode" = check ]; then
    if ! git ls-files -z -- "${files[@]}" | xargs -0 "$cf" --style=file --dry-run --Werror; then
        echo "format.sh: the lines above are not formatted; .ci/format.sh rewrites them" >&2
        exit 1
    fi
    echo "format.sh: all files formatted"
else
    git ls-files -z -- "${files[@]}" | xargs -0 "$cf" --style=file -i
fi
