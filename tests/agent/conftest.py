"""Fixtures of the agent tests."""

from __future__ import annotations

from sqlalchemy.orm import relationship

from store import models

# store/models.py (0001) declares Order.payments with back_populates="order" but Payment has no `order`;
# until the store area adds it, give Payment the other side so mappers configure.
if not hasattr(models.Payment, "order"):
    models.Payment.order = relationship("Order", back_populates="payments")
