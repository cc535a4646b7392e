"""Persistence and readers: no scheduling, no sockets. The daemon and the jobs build on these."""
