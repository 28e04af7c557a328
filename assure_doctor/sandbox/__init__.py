"""A simulated Assure stack on loopback: a real UDP DNS server and real HTTPS, with faults.

`Sandbox(scenario)` runs in a background thread; `scenarios.SCENARIOS` names every fault.
"""
