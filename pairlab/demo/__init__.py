"""The live demo: face alignment, translation with shipped or trained checkpoints, and the shipped demo workspace."""
