"""entra-batch: bulk management of Microsoft Entra External ID customer accounts."""

__version__ = "0.1.0"
