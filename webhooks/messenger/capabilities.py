"""What the Messenger (and Instagram) Send API can send, and the gate's rules for it (protocols C2)."""

CAPABILITIES = {
    "kinds": frozenset({"text", "image", "video", "audio", "document", "interactive", "read"}),
    "identity_kinds": ("psid",),
    "max_text": 2000,
    "window": True,          # 24 h standard messaging; HUMAN_AGENT tag up to 7 days for a person
    "tags": ("HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"),
    "rate_per_s": 40,
}
INSTAGRAM_CAPABILITIES = {**CAPABILITIES, "identity_kinds": ("igsid",), "tags": ("HUMAN_AGENT",)}
