"""The webhook receiver: verify each provider's signature, store the raw event durably, answer fast.

One folder per provider (``webhooks/<name>/``) behind ``gateway.providers.Provider``.
"""
