"""assure-doctor: connectivity doctor and health monitor for the Evotix Assure Customer API."""

__version__ = "0.1.0"
