"""Pure customer rules: identity normalization and which customer an identity is."""
