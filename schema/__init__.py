"""Strawberry types, inputs and enums per domain area, and the assembled schema."""
