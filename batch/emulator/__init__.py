"""A local Microsoft Graph for customer accounts: users, deleted items, $batch, delta,
throttling, faults and a client-credentials token endpoint. See docs/emulator.md.

The emulator is Graph, not us: it never imports the engine, the verbs or the client.
"""

from .app import ConnectionDropped, EmulatorApp, create_app
from .settings import EmulatorSettings, Faults, Latency, Quota, Quotas
from .store import ALL_USER_PERMISSIONS, App, Store, Tenant

__all__ = [
    "ALL_USER_PERMISSIONS", "App", "ConnectionDropped", "EmulatorApp", "EmulatorSettings", "Faults", "Latency",
    "Quota", "Quotas", "Store", "Tenant", "create_app",
]
