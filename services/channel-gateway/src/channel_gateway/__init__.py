"""channel-gateway: partner webhooks and connectors in, canonical OrderReceived out."""
