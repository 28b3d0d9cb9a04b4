"""SASL authentication: the PLAIN and SCRAM server mechanisms (pure, no I/O) and the per-connection
exchange that the SaslHandshake / SaslAuthenticate APIs drive."""
