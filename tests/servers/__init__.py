"""Real test servers (Dovecot, aiosmtpd) and the certificates they use."""
