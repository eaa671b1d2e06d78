#!/bin/sh
# A stand-in for a server: waits for work, and on SIGTERM says goodbye and exits at once.
trap 'echo "got SIGTERM, shutting down"; exit 0' TERM
echo "ready"
sleep 100000 &
wait $!
