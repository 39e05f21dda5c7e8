"""Blueprints: one per area, each named ``bp``; they parse input, call one core function, render."""
