"""Kafka drivers: one module per client library behind one small surface (``base``).

``KAFKA_DRIVER`` picks one: ``kafka-python`` (the default, pure Python) or ``confluent``
(librdkafka, the ``confluent`` extra). Only ``worker.clients`` and the commands that
build clients ask for a driver; the processor, the steps and the offset tracking see
its clients through the surface in ``base``.
"""

from __future__ import annotations

from worker.streaming.drivers.base import KafkaDriver

KAFKA_DRIVERS = ("kafka-python", "confluent")


class DriverUnavailable(RuntimeError):
    """The driver's library is not installed (the message says how to install it)."""


def load_driver(name: str) -> KafkaDriver:
    """The driver called ``name``; ``DriverUnavailable`` when its library is missing."""
    if name == "kafka-python":
        from worker.streaming.drivers.kafka_python import KafkaPythonDriver

        return KafkaPythonDriver()
    if name == "confluent":
        from worker.streaming.drivers.confluent import ConfluentDriver

        try:
            return ConfluentDriver()
        except ImportError as exc:
            raise DriverUnavailable(str(exc)) from None
    raise ValueError(f"unknown kafka driver {name!r}; expected one of {KAFKA_DRIVERS}")


__all__ = ["KAFKA_DRIVERS", "DriverUnavailable", "KafkaDriver", "load_driver"]
