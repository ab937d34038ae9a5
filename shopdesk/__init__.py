"""shopdesk: an open-source AI assistant for online shops (customers and marketers)."""

__version__ = "0.1.0"
