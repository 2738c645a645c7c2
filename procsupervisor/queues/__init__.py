"""Crash-id queues: the embedded filesystem spool and RabbitMQ, behind one interface."""
