"""One module per operation (create, update, reset_password, delete, restore, purge), each
with its `SPEC`, listed once in batch/verbs/registry.py.

What the verbs share lives in modules named for it: base (the `Verb` interface), permissions,
fields (the field rules and the one email rule), lookups (user keys and their Graph lookups),
existing (verbs on existing customers), seen (duplicate keys), answers (sending, conflicts).
"""
