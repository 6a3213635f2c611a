"""Dialer: turns stored requests into connected calls through Asterisk."""
