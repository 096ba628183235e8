"""Helpers shared by several test modules (pytest puts tests/ on sys.path: ``from helpers.x import ...``).

Test modules import helpers from here, never from one another.
"""
