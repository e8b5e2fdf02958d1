"""What a consumer mixin derives from: Faust's aiokafka Consumer for the type checker, nothing at
run time (aimesh.transport puts the mixins in front of that Consumer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.transport.drivers import aiokafka as driver

ConsumerMixinBase: type = driver.Consumer if TYPE_CHECKING else object
