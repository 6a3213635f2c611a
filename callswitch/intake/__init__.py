"""Intake: the HTTP API web pages post callback requests to."""
