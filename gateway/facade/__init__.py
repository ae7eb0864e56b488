"""The Cloud API facade: Meta's own WhatsApp Cloud API, served by the gateway under ``/graph``.

An integration written for ``https://graph.facebook.com`` changes its base URL to ``{gateway}/graph`` and its
access token to a gateway API key, and nothing else. Every request becomes what the gateway's REST API would
make of it - a message through the one send gate, an upload, a catalog read - and answers in Meta's shapes,
refusals included (``errors``). Message ids the facade hands out are its own (``ids``); the statuses and
replies forwarded to the integration in Meta's webhook format (``webhook_format``) carry the same ids.
"""
