"""Tables of the shop: customers, catalog, orders, reviews and logged support conversations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ORDER_STATUSES = ("pending", "processed", "delivered", "cancelled", "return requested", "exchange requested")
Money = Numeric(12, 2)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    address1: Mapped[str | None] = mapped_column(String(255))
    address2: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(100))
    zip: Mapped[str | None] = mapped_column(String(20))
    signup_date: Mapped[datetime | None] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(50), default="manual")

    payment_methods: Mapped[list[PaymentMethod]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    orders: Mapped[list[Order]] = relationship(back_populates="customer")

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class PaymentMethod(Base):
    __tablename__ = "payment_methods"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # credit_card | paypal | gift_card
    brand: Mapped[str | None] = mapped_column(String(50))
    last_four: Mapped[str | None] = mapped_column(String(4))
    balance: Mapped[Decimal | None] = mapped_column(Money)  # gift cards only

    customer: Mapped[Customer] = relationship(back_populates="payment_methods")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    category: Mapped[str | None] = mapped_column(String(200), index=True)
    brand: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[float | None] = mapped_column()  # the catalog's stated rating, if any (reviews are separate)
    rating_count: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(50), default="manual")
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    variants: Mapped[list[Variant]] = relationship(back_populates="product", cascade="all, delete-orphan")


class Variant(Base):
    __tablename__ = "variants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    price: Mapped[Decimal] = mapped_column(Money)
    available: Mapped[bool] = mapped_column(Boolean, default=True)

    product: Mapped[Product] = relationship(back_populates="variants")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_created", "customer_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(30), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))  # sum of item lines, kept in step by writers
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # shipping address snapshot
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # cancel reason, return/exchange requests
    source: Mapped[str] = mapped_column(String(50), default="manual")

    customer: Mapped[Customer] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(back_populates="order", cascade="all, delete-orphan")
    fulfillments: Mapped[list[Fulfillment]] = relationship(back_populates="order", cascade="all, delete-orphan")
    payments: Mapped[list[Payment]] = relationship(back_populates="order", cascade="all, delete-orphan")


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id"), index=True)
    variant_id: Mapped[str | None] = mapped_column(ForeignKey("variants.id"))
    name: Mapped[str | None] = mapped_column(String(500))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    order: Mapped[Order] = relationship(back_populates="items")


class Fulfillment(Base):
    __tablename__ = "fulfillments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    tracking_id: Mapped[str] = mapped_column(String(64))
    carrier: Mapped[str | None] = mapped_column(String(50))
    variant_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime)

    order: Mapped[Order] = relationship(back_populates="fulfillments")


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # payment | refund
    amount: Mapped[Decimal] = mapped_column(Money)
    payment_method_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime | None] = mapped_column(DateTime)

    order: Mapped[Order] = relationship(back_populates="payments")


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(10), default="en")
    created_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    source: Mapped[str] = mapped_column(String(50), default="manual")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # customer | marketer
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(30), default="chat")  # chat | sample | eval
    outcome: Mapped[str | None] = mapped_column(String(50))  # resolved | handed_off | ...

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", order_by="Message.seq"
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # system | user | assistant | tool
    content: Mapped[str] = mapped_column(Text, default="")
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)  # [{"id", "name", "arguments"}]
    tool_call_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(100))  # tool name on tool messages
    created_at: Mapped[datetime] = mapped_column(DateTime)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # latency_s, backend, adapter, grounding events

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


EVENT_KINDS = ("view", "search", "cart", "support", "purchase", "review", "return")


class Event(Base):
    """One thing a customer did: viewed or searched the catalog, added to cart, contacted support, bought, reviewed,
    returned. What shop platforms and analytics tools export; the journey and the funnel are read from here.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_time", "customer_id", "occurred_at", "kind"),  # covers the funnel's GROUP BY
        Index("ix_events_kind_time", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the exporter's event id, or a hash of (customer, kind, time, product, query, order): a re-import adds nothing
    key: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(20))  # one of EVENT_KINDS
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    product_id: Mapped[str | None] = mapped_column(String(64), index=True)  # as exported; may not be in the catalog
    query: Mapped[str | None] = mapped_column(String(500))  # search text
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)  # purchase, return
    session_id: Mapped[str | None] = mapped_column(String(128))  # the exporter's visit/session, if any
    source: Mapped[str] = mapped_column(String(50), default="manual")


class ImportRun(Base):
    """One importer run, so re-imports can be recognised and reported."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ShopSetting(Base):
    """One setting of the shop, e.g. `currency` (ISO 4217 code of every amount in the store)."""

    __tablename__ = "shop_settings"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


STAFF_ROLES = ("support", "marketer")
TICKET_STATUSES = ("open", "resolved")


class StaffAccount(Base):
    """A person of the shop who signs in: a support agent (the handoff inbox) or a marketer (the console)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # one of STAFF_ROLES
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, parameters inside
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # disabled accounts cannot sign in
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)


class Ticket(Base):
    """A conversation handed to a person; its number is what the customer is told."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # the ticket number
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)  # one of TICKET_STATUSES
    summary: Mapped[str] = mapped_column(Text, default="")  # the bot's summary for the person taking over
    created_at: Mapped[datetime] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(100))  # staff name
    resolution: Mapped[str | None] = mapped_column(Text)  # the note the agent closed it with
