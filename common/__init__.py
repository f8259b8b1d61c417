"""Plumbing every layer shares: errors that become exit codes, atomic files, figures, command-line helpers.

Imports no other project package (tests/test_layering.py).
"""
