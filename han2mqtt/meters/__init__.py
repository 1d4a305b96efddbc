"""Meter layouts (vendor lists as data), vendor detection and normalization."""
