"""WhatsApp message templates: definitions, validation against Meta's rules, rendering and sync."""
