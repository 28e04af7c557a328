"""The interactive troubleshooter (Textual). Imported only by `assure-doctor tui`."""
