#!/bin/sh
# no_python.sh: stands in for python3 when configure found none, so the Python API tests say
# why they did not run (exit 77: skipped) instead of failing or passing silently.
echo "SKIP: $1 needs python3, which configure did not find"
exit 77
