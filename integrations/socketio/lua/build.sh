#!/bin/sh
# Writes the EVAL form of presence.lua: the same file with its first line (the library's name,
# which only FUNCTION LOAD takes) replaced by the flags EVAL takes. Usage: build.sh [out-file]
set -eu
dir=$(dirname "$0")
out=${1:-"$dir/presence.eval.lua"}
{
    echo '#!lua flags=allow-cross-slot-keys'
    tail -n +2 "$dir/presence.lua"
} >"$out"
