"""One handler per Kafka API: turns storage results into response messages. No sockets here."""
