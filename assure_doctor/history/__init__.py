"""The path history: a fingerprint of every healthy check, what changed since the last good
one, and where it is kept."""
