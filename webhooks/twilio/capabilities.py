"""What Twilio Programmable Messaging can send from the gateway, and the gate's rules (protocols D4)."""

CAPABILITIES = {
    "kinds": frozenset({"text", "image", "video", "audio", "document", "read"}),
    "identity_kinds": ("phone",),
    "max_text": 1600,
    "window": False,         # SMS has no customer-service window (Twilio WhatsApp senders: the provider refuses)
    "rate_per_s": 1,         # a US long code sends about one segment per second; raise per sender in settings
}
