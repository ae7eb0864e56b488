"""Automation (issue 8): rules (welcome, business hours, keywords, hand-off) run by ``engine.on_inbound``."""
