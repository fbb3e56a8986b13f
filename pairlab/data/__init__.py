"""Data: sources, SynthFaces, synthesizers, landmarks, recipes and compositions."""
