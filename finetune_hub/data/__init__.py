"""Training files as such: reading, record shapes, formats, token counting and conversions.

Nothing in this package knows a provider's rules or talks to a network.
"""
