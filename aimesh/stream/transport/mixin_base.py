"""What a mixin derives from: Faust's aiokafka Consumer, its consumer thread or its Producer for
the type checker, nothing at run time (aimesh.stream.transport puts the mixins in front of those
classes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.transport.drivers import aiokafka as driver

ConsumerMixinBase: type = driver.Consumer if TYPE_CHECKING else object
ConsumerThreadMixinBase: type = driver.AIOKafkaConsumerThread if TYPE_CHECKING else object
ProducerMixinBase: type = driver.Producer if TYPE_CHECKING else object
