"""Audio capture, playback and earcons; the C ring buffer lives here."""
