"""The lab estate: a Debian image built locally and podman containers that act as hosts."""
