"""Notifications: signed webhooks and lead e-mails, delivered from a durable outbox in Postgres.

Submodules: :mod:`.config` (the ``notifications:`` section), :mod:`.notifier` (the delivery loop),
:mod:`.payload` (webhook bodies), :mod:`.signing`, :mod:`.email` (lead cards), :mod:`.admin`
(delivery listing for the admin API). This package module imports nothing on purpose:
``callswitch.config`` imports :mod:`.config`, which must not pull in the database layer.
"""
