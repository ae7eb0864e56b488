"""What the Cloud API can send, and the rules the send gate applies to it (protocols B1, B4, B5)."""

CAPABILITIES = {
    "kinds": frozenset({"text", "template", "image", "video", "audio", "document", "sticker", "interactive",
                        "location", "contacts", "reaction", "read"}),
    "identity_kinds": ("phone", "bsuid"),
    "max_text": 4096,
    "window": True,          # free-form only within 24 h of the customer's last message; templates always
    "rate_per_s": 80,        # Meta's default per number; settings.rate_per_s up to 1,000 once upgraded
    # Pair rate limit (131056): about one message per 6 s to the same customer; Meta lends a burst from
    # future quota, so a small burst here stays inside it. settings.pair_interval_s / pair_burst override.
    "pair_interval_s": 6.0,
    "pair_burst": 5,
}
