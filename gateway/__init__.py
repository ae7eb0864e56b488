"""Omnichannel messaging gateway: the core (contacts, threads, messages, consent, encryption, sending)."""
__version__ = "0.1.0"
