"""Ways of showing a Report: `human` for people, `json` for scripts."""
